// ParseBatchPlain: a batch manifest laid out as the Python client writes it, read in
// one pass straight into the BatchSpec, without a JSON tree (README "Per-object cost",
// the third round of `put`: building and freeing ParseBatch's ordered_json tree of a
// 2,001-entry manifest was most of the seal's read+parse phase).
//
// What it takes: `{"entries":[E,...]}` or `{"entries":[E,...],"root":K}` with no
// whitespace anywhere, each E `{"blob":[OFFSET,SIZE]}` or `{"meta":{...}}`, keys
// without escapes, ASCII only; field values that are strings (the escapes \" \\ \b \f
// \n \r \t only: the ones nlohmann's dump writes back the same), integers of at most
// 18 digits, true/false/null, {} and arrays of these (a few levels); members exactly
// {"id":"#J"} or {"id":"o..."}. On such input the field text is the text as written,
// which is what the general path's dump gives for it. Anything else — other layouts,
// floats, escapes, UTF-8, duplicate keys, and every input the rules refuse — is
// nullopt, and the general path (ParseBatchGeneral) decides with its precise errors.
// The two therefore agree on everything this accepts (tests/meta/batch_plain_test.cc,
// and fuzz/batch_fuzzer.cc checks it on every input it runs).
#include <cstring>
#include <functional>
#include <optional>

#include "meta/batch.h"

namespace vineyard {

namespace {

constexpr int kMaxPlainDepth = 8;  // arrays in arrays within one field value
// Objects with more keys than this find duplicates through a hash table.
constexpr size_t kLinearKeys = 16;

// A key set for one object: duplicates are refused (the general path keeps the
// first position and the last value of a repeated key; this one does not try).
class KeySet {
 public:
  void Clear() {
    if (keys_.size() >= kLinearKeys) slots_.assign(slots_.size(), -1);  // the table was used
    keys_.clear();
  }
  // False if `k` is there already.
  bool Insert(std::string_view k) {
    if (keys_.size() < kLinearKeys) {
      for (std::string_view have : keys_) {
        if (have == k) return false;
      }
      keys_.push_back(k);
      if (keys_.size() == kLinearKeys) Rehash(64);
      return true;
    }
    if (keys_.size() * 2 >= slots_.size()) Rehash(slots_.size() * 2);
    if (!Place(k, static_cast<int32_t>(keys_.size()))) return false;
    keys_.push_back(k);
    return true;
  }

 private:
  bool Place(std::string_view k, int32_t index) {
    const size_t mask = slots_.size() - 1;
    for (size_t h = std::hash<std::string_view>()(k) & mask;; h = (h + 1) & mask) {
      if (slots_[h] < 0) {
        slots_[h] = index;
        return true;
      }
      if (keys_[static_cast<size_t>(slots_[h])] == k) return false;
    }
  }
  void Rehash(size_t n) {
    slots_.assign(n, -1);
    for (size_t i = 0; i < keys_.size(); ++i) Place(keys_[i], static_cast<int32_t>(i));
  }
  std::vector<std::string_view> keys_;
  std::vector<int32_t> slots_;  // indices into keys_, -1 empty; a power of two
};

class PlainBatchReader {
 public:
  PlainBatchReader(std::string_view s, uint64_t payload_size) : s_(s), payload_(payload_size) {}

  // The entries, their kinds and the root; false for anything not taken.
  bool Read(BatchSpec* b, std::vector<bool>* blob) {
    if (!Lit("{\"entries\":[")) return false;
    do {
      const size_t i = b->entries.size();
      if (i >= kMaxBatchEntries) return false;
      b->entries.emplace_back();
      BatchEntry& e = b->entries.back();
      if (Lit("{\"blob\":[")) {
        e.blob = true;
        if (!Uint(&e.offset) || !Lit(",") || !Uint(&e.size) || !Lit("]}")) return false;
        if (e.offset > payload_ || e.size > payload_ - e.offset) return false;
      } else if (!Lit("{\"meta\":{") || !Meta(i, &e) || !Lit("}")) {
        return false;
      }
      blob->push_back(e.blob);
    } while (Lit(","));
    if (!Lit("]")) return false;
    uint64_t root = b->entries.size() - 1;
    if (Lit(",\"root\":") && (!Uint(&root) || root >= b->entries.size())) return false;
    b->root = static_cast<uint32_t>(root);
    return Lit("}") && p_ == s_.size() && AllReached(*b);
  }

  // With the ids known: the members' ids, in the members and in the fields' text.
  void Finish(BatchSpec* b) const {
    for (const Patch& p : patches_) {
      BatchEntry& e = b->entries[p.entry];
      const ObjectID id = b->ids[p.ref];
      e.spec.members[p.member].second = id;
      uint64_t raw = id.raw();  // ObjectID::ToString over the placeholder, in place
      for (size_t k = kPlaceholder.size() - 1; k >= 1; --k, raw >>= 4) {
        e.spec.fields[p.at + k] = "0123456789abcdef"[raw & 15];
      }
    }
  }

 private:
  // A member "#J" of entry `entry`: its id goes into members[member] and, as text,
  // at fields[at].
  struct Patch {
    uint32_t entry, member, ref;
    size_t at;
  };
  static constexpr std::string_view kPlaceholder = "o0000000000000000";

  bool Lit(std::string_view lit) {
    if (s_.compare(p_, lit.size(), lit) != 0) return false;
    p_ += lit.size();
    return true;
  }
  char Peek() const { return p_ < s_.size() ? s_[p_] : '\0'; }

  // A non-negative integer as nlohmann reads it unsigned (no leading zero, fits).
  bool Uint(uint64_t* out) {
    const size_t begin = p_;
    uint64_t v = 0;
    for (; p_ < s_.size() && s_[p_] >= '0' && s_[p_] <= '9'; ++p_) {
      if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s_[p_] - '0', &v)) {
        return false;
      }
    }
    if (p_ == begin || (s_[begin] == '0' && p_ - begin > 1)) return false;
    *out = v;
    return true;
  }

  // A string's contents up to its closing quote: printable ASCII, and with
  // `escapes` the escapes a dump writes back the same. Sets *raw to the contents.
  bool Str(bool escapes, std::string_view* raw) {
    if (!Lit("\"")) return false;
    const size_t begin = p_;
    for (; p_ < s_.size(); ++p_) {
      const unsigned char c = static_cast<unsigned char>(s_[p_]);
      if (c == '"') {
        *raw = s_.substr(begin, p_ - begin);
        ++p_;
        return true;
      }
      if (c < 0x20 || c >= 0x7f) return false;
      if (c == '\\') {
        if (!escapes || ++p_ == s_.size() || !std::strchr("\"\\bfnrt", s_[p_]) || s_[p_] == 0) {
          return false;
        }
      }
    }
    return false;
  }

  // A plain field value (see the top of the file), skipped.
  bool Value(int depth) {
    const char c = Peek();
    std::string_view raw;
    if (c == '"') return Str(true, &raw);
    if (c == '-' || (c >= '0' && c <= '9')) {
      const size_t begin = p_;
      if (c == '-') ++p_;
      uint64_t v = 0;
      // At most 18 digits (any int64), and not -0 (its dump is 0).
      return Uint(&v) && p_ - begin <= 19 && v <= 999999999999999999ULL && !(c == '-' && v == 0);
    }
    if (c == '[') {
      if (depth >= kMaxPlainDepth) return false;
      ++p_;
      if (Lit("]")) return true;
      do {
        if (!Value(depth + 1)) return false;
      } while (Lit(","));
      return Lit("]");
    }
    return Lit("{}") || Lit("true") || Lit("false") || Lit("null");
  }

  // The create form of entry `i` (after its opening brace, up to its closing one).
  bool Meta(size_t i, BatchEntry* e) {
    std::string& fields = fields_;  // copied out at the end: one allocation of its size
    fields.clear();
    keys_.Clear();
    do {
      std::string_view key;
      if (!Str(false, &key) || !Lit(":") || !keys_.Insert(key)) return false;
      if (key.empty() || key.size() > kMaxFieldName || key == "." || key == ".." ||
          key.find('/') != std::string_view::npos || key == "id" || key == "instance_id" ||
          key == "signature" || key == "__timestamp") {
        return false;
      }
      if (key == "typename") {
        std::string_view t;
        if (!Str(false, &t) || t.empty()) return false;
        e->spec.type_name.assign(t);
        continue;
      }
      if (key == "global" || key == "transient") {
        const bool v = Lit("true");
        if (!v && !Lit("false")) return false;
        if (key == "global") {
          e->spec.global = v;
        } else {
          e->spec.persist = !v;
        }
        continue;
      }
      if (key == "nbytes") {  // the store computes it; a builder's figure is dropped
        if (!Value(0)) return false;
        continue;
      }
      fields += fields.empty() ? "{\"" : ",\"";
      fields.append(key.data(), key.size());
      fields += "\":";
      if (Lit("{\"id\":")) {
        if (!Member(i, key, e)) return false;
        continue;
      }
      const size_t begin = p_;
      if (!Value(0)) return false;
      fields.append(s_.data() + begin, p_ - begin);
    } while (Lit(","));
    if (!Lit("}") || e->spec.type_name.empty()) return false;
    if (!fields.empty()) fields += '}';
    if (fields.size() > kMaxMetaBytes) return false;
    e->spec.fields = fields;
    if (e->spec.global) e->spec.persist = true;
    return true;
  }

  // A member's {"id": ...} after its "id": key; appends it to the fields.
  bool Member(size_t i, std::string_view key, BatchEntry* e) {
    std::string_view text;
    if (!Str(false, &text) || !Lit("}")) return false;
    std::string& fields = fields_;
    fields += "{\"id\":\"";
    if (text.size() >= 2 && text[0] == '#') {
      // "#J": J decimal without leading zeros, an earlier entry (as RefIndex).
      uint64_t j = 0;
      if (text.size() > 7 || (text[1] == '0' && text.size() > 2)) return false;
      for (size_t k = 1; k < text.size(); ++k) {
        if (text[k] < '0' || text[k] > '9') return false;
        j = j * 10 + static_cast<uint64_t>(text[k] - '0');
      }
      if (j >= i) return false;
      patches_.push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(e->spec.members.size()),
                          static_cast<uint32_t>(j), fields.size()});
      e->refs.push_back(static_cast<uint32_t>(j));
      e->spec.members.emplace_back(std::string(key), ObjectID());
      fields += kPlaceholder;
    } else {
      auto id = ObjectID::Parse(text);
      if (!id.ok()) return false;
      e->spec.members.emplace_back(std::string(key), *id);
      fields.append(text.data(), text.size());
    }
    fields += "\"}";
    return true;
  }

  // Every entry reached from the root (references only go back: one sweep down).
  static bool AllReached(const BatchSpec& b) {
    std::vector<bool> seen(b.entries.size(), false);
    seen[b.root] = true;
    for (size_t i = b.root + 1; i-- > 0;) {
      if (!seen[i]) return false;
      for (uint32_t j : b.entries[i].refs) seen[j] = true;
    }
    return b.root + 1 == b.entries.size();
  }

  std::string_view s_;
  size_t p_ = 0;
  uint64_t payload_;
  KeySet keys_;
  std::string fields_;  // the fields of the entry being read
  std::vector<Patch> patches_;
};

}  // namespace

std::optional<Result<BatchSpec>> ParseBatchPlain(std::string_view manifest, uint64_t payload_size,
                                                 const BatchIds& ids) {
  if (manifest.size() > kMaxBatchManifestBytes) return std::nullopt;
  PlainBatchReader reader(manifest, payload_size);
  BatchSpec b;
  std::vector<bool> blob;
  if (!reader.Read(&b, &blob)) return std::nullopt;
  if (ids) {
    auto got = ids(blob);
    if (!got.ok()) return Result<BatchSpec>(got.status());
    b.ids = std::move(*got);
  } else {
    b.ids.reserve(blob.size());
    for (size_t i = 0; i < blob.size(); ++i) {  // stand-ins, never stored
      b.ids.push_back(ObjectID::Make(blob[i], 1, i + 1));
    }
  }
  reader.Finish(&b);
  return Result<BatchSpec>(std::move(b));
}

}  // namespace vineyard
