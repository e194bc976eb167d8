#include "meta/batch.h"

#include <string>

#include "meta/json.h"

namespace vineyard {

namespace {

std::string At(size_t i) { return "batch entry " + std::to_string(i); }

// "#J" with J the decimal index of an entry before `self`.
Result<uint32_t> RefIndex(const std::string& text, size_t self, const std::string& field) {
  const std::string where = At(self) + ", member '" + field + "': ";
  bool digits = text.size() >= 2 && text.size() <= 7 && (text[1] != '0' || text.size() == 2);
  for (size_t i = 1; digits && i < text.size(); ++i) digits = text[i] >= '0' && text[i] <= '9';
  if (!digits) {
    return Status::InvalidArgument(where + "'" + text.substr(0, 32) +
                                   "' is neither an object id nor '#' and an entry index");
  }
  uint64_t j = std::stoull(text.substr(1));
  if (j >= self) {
    return Status::InvalidArgument(where + "'" + text + "' is not an earlier entry (members " +
                                   "reference entries before their own, so a batch has no cycles)");
  }
  return static_cast<uint32_t>(j);
}

Result<BatchEntry> BlobEntry(const ojson& range, size_t i, uint64_t payload_size) {
  if (!range.is_array() || range.size() != 2 || !range[0].is_number_unsigned() ||
      !range[1].is_number_unsigned()) {
    return Status::InvalidArgument(At(i) + ": \"blob\" must be [offset, size] (two " +
                                   "non-negative integers)");
  }
  BatchEntry e;
  e.blob = true;
  e.offset = range[0].get<uint64_t>();
  e.size = range[1].get<uint64_t>();
  if (e.offset > payload_size || e.size > payload_size - e.offset) {
    return Status::InvalidArgument(At(i) + ": range [" + std::to_string(e.offset) + ", +" +
                                   std::to_string(e.size) + ") is outside the payload (" +
                                   std::to_string(payload_size) + " bytes after the manifest)");
  }
  return e;
}

// A "meta" entry: references become the ids of their entries, then the create form's rules.
Result<BatchEntry> MetaEntry(ojson meta, size_t i, const std::vector<ObjectID>& ids) {
  if (!meta.is_object()) return Status::InvalidArgument(At(i) + ": \"meta\" must be an object");
  BatchEntry e;
  for (auto& [key, value] : meta.items()) {
    if (!value.is_object() || !value.contains("id") || !value["id"].is_string()) continue;
    const std::string& text = value["id"].get_ref<const std::string&>();
    if (text.empty() || text[0] != '#') continue;
    auto j = RefIndex(text, i, key);
    if (!j.ok()) return j.status();
    e.refs.push_back(*j);
    value["id"] = ids[*j].ToString();
  }
  auto spec = SpecFromJson(std::move(meta));
  if (!spec.ok()) {
    std::string why = At(i) + ": " + spec.status().message();
    if (spec.status().code() == Status::Code::kTooLarge) return Status::TooLarge(why);
    return Status::InvalidArgument(why);
  }
  e.spec = std::move(*spec);
  return e;
}

// Every entry must be reachable from the root (iterative: references only go back).
Status CheckReachable(const BatchSpec& b) {
  std::vector<bool> seen(b.entries.size(), false);
  std::vector<uint32_t> stack{b.root};
  seen[b.root] = true;
  while (!stack.empty()) {
    uint32_t k = stack.back();
    stack.pop_back();
    for (uint32_t j : b.entries[k].refs) {
      if (!seen[j]) {
        seen[j] = true;
        stack.push_back(j);
      }
    }
  }
  for (size_t i = 0; i < seen.size(); ++i) {
    if (!seen[i]) {
      return Status::InvalidArgument(At(i) + " is not reached from the root (entry " +
                                     std::to_string(b.root) + ") through members: " +
                                     "nothing would name it");
    }
  }
  return Status::OK();
}

}  // namespace

Result<BatchSpec> ParseBatch(std::string_view manifest, uint64_t payload_size,
                             const BatchIds& ids) {
  if (auto plain = ParseBatchPlain(manifest, payload_size, ids)) return std::move(*plain);
  return ParseBatchGeneral(manifest, payload_size, ids);
}

Result<BatchSpec> ParseBatchGeneral(std::string_view manifest, uint64_t payload_size,
                                    const BatchIds& ids) {
  if (manifest.size() > kMaxBatchManifestBytes) {
    return Status::TooLarge("batch manifest is " + std::to_string(manifest.size()) +
                            " bytes, over the limit of 16 MiB");
  }
  auto parsed = ParseJson<ojson>(manifest, kMaxBatchDepth, "batch manifest");
  if (!parsed.ok()) return parsed.status();
  ojson& doc = *parsed;
  if (!doc.is_object()) return Status::InvalidArgument("batch manifest must be a JSON object");
  for (auto& [key, value] : doc.items()) {
    if (key != "entries" && key != "root") {
      return Status::InvalidArgument("batch manifest: unknown key '" + key.substr(0, 64) +
                                     "' (expected \"entries\" and \"root\")");
    }
  }
  if (!doc.contains("entries") || !doc["entries"].is_array() || doc["entries"].empty()) {
    return Status::InvalidArgument("batch manifest: \"entries\" must be a non-empty array");
  }
  ojson& entries = doc["entries"];
  if (entries.size() > kMaxBatchEntries) {
    return Status::TooLarge("batch manifest has " + std::to_string(entries.size()) +
                            " entries, over the limit of " + std::to_string(kMaxBatchEntries));
  }
  BatchSpec b;
  b.root = static_cast<uint32_t>(entries.size() - 1);
  if (doc.contains("root")) {
    const ojson& r = doc["root"];
    if (!r.is_number_unsigned() || r.get<uint64_t>() >= entries.size()) {
      return Status::InvalidArgument("batch manifest: \"root\" must be the index of an entry (0.." +
                                     std::to_string(entries.size() - 1) + ")");
    }
    b.root = static_cast<uint32_t>(r.get<uint64_t>());
  }
  std::vector<bool> blob(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const ojson& e = entries[i];
    if (!e.is_object() || e.size() != 1 || !(e.contains("blob") || e.contains("meta"))) {
      return Status::InvalidArgument(At(i) + " must be {\"blob\": [offset, size]} or " +
                                     "{\"meta\": {...}}");
    }
    blob[i] = e.contains("blob");
  }
  if (ids) {
    auto got = ids(blob);
    if (!got.ok()) return got.status();
    b.ids = std::move(*got);
  } else {
    for (size_t i = 0; i < blob.size(); ++i) {  // stand-ins, never stored
      b.ids.push_back(ObjectID::Make(blob[i], 1, i + 1));
    }
  }
  b.entries.reserve(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    auto e = blob[i] ? BlobEntry(entries[i]["blob"], i, payload_size)
                     : MetaEntry(std::move(entries[i]["meta"]), i, b.ids);
    if (!e.ok()) return e.status();
    b.entries.push_back(std::move(*e));
  }
  VY_RETURN_IF_ERROR(CheckReachable(b));
  return b;
}

}  // namespace vineyard
