#include "meta/object_meta.h"

#include <nlohmann/json.hpp>
#include <charconv>
#include <climits>
#include <cstdio>
#include <optional>

#include "meta/json.h"

namespace vineyard {


namespace {

bool IsReserved(const std::string& key) {
  return key == "id" || key == "instance_id" || key == "signature" || key == "__timestamp";
}

// Keys the create form consumes: never among a record's fields.
bool IsConsumed(const std::string& key) {
  return key == "typename" || key == "global" || key == "transient" || key == "nbytes";
}

// A member's value: {"id": "o..."}; anything else holding "id" is refused.
template <typename Json>
Result<ObjectID> MemberId(const std::string& key, const Json& value) {
  const Json& idv = value["id"];
  if (!idv.is_string()) {
    return Status::InvalidArgument("member '" + key + "': \"id\" must be a string");
  }
  auto id = ObjectID::Parse(idv.template get<std::string>());
  if (!id.ok()) return Status::InvalidArgument("member '" + key + "': " + id.status().message());
  return id;
}

}  // namespace

Status ValidateName(std::string_view name) {
  if (name.empty()) return Status::InvalidArgument("name is empty");
  if (name.size() > 255) return Status::InvalidArgument("name is longer than 255 bytes");
  if (name == "." || name == "..") return Status::InvalidArgument("name may not be . or ..");
  for (char c : name) {
    if (c == '/' || c == '\0') {
      return Status::InvalidArgument("name '" + std::string(name) + "' contains '/' or NUL");
    }
  }
  return Status::OK();
}

Status ValidateFieldName(std::string_view key) {
  if (key.empty()) return Status::InvalidArgument("field name is empty");
  if (key.size() > kMaxFieldName) {
    return Status::InvalidArgument("field name '" + std::string(key.substr(0, 32)) + "...' has " +
                                   std::to_string(key.size()) + " bytes, over " +
                                   std::to_string(kMaxFieldName));
  }
  if (key == "." || key == "..") {
    return Status::InvalidArgument("field name '" + std::string(key) + "' is not a file name");
  }
  if (key.find('/') != std::string_view::npos || key.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("field name '" + std::string(key) + "' contains '/' or NUL");
  }
  return Status::OK();
}

Result<CreateSpec> ParseCreateMeta(std::string_view bytes) {
  if (bytes.size() > kMaxMetaBytes) {
    return Status::TooLarge("metadata is " + std::to_string(bytes.size()) +
                            " bytes, over the limit of 16 MiB");
  }
  auto parsed = ParseJson<ojson>(bytes, kMaxMetaDepth, "metadata");
  if (!parsed.ok()) return parsed.status();
  return SpecFromJson(std::move(*parsed));
}

Result<CreateSpec> SpecFromJson(ojson doc) {
  if (!doc.is_object()) return Status::InvalidArgument("metadata must be a JSON object");

  CreateSpec spec;
  ojson fields = ojson::object();
  for (auto& [key, value] : doc.items()) {
    VY_RETURN_IF_ERROR(ValidateFieldName(key));
    if (key == "typename") {
      if (!value.is_string() || value.get<std::string>().empty()) {
        return Status::InvalidArgument("'typename' must be a non-empty string");
      }
      spec.type_name = value.get<std::string>();
    } else if (key == "global") {
      if (!value.is_boolean()) return Status::InvalidArgument("'global' must be true or false");
      spec.global = value.get<bool>();
    } else if (key == "transient") {
      if (!value.is_boolean()) return Status::InvalidArgument("'transient' must be true or false");
      spec.persist = !value.get<bool>();
    } else if (key == "nbytes") {
      // Computed by the store (sum over blobs); a builder's own figure is not trusted.
    } else if (IsReserved(key)) {
      return Status::InvalidArgument("field '" + key + "' is set by the store, not by the creator");
    } else if (value.is_object() && value.contains("id")) {
      auto id = MemberId(key, value);
      if (!id.ok()) return id.status();
      spec.members.emplace_back(key, *id);
      fields[key] = ojson{{"id", id->ToString()}};
    } else {
      fields[key] = std::move(value);
    }
  }
  if (spec.type_name.empty()) return Status::InvalidArgument("metadata has no 'typename'");
  if (spec.global) spec.persist = true;  // a global object is persisted from the start
  // Parsed strings are valid UTF-8 and the depth is bounded: dump() cannot throw.
  spec.fields = fields.empty() ? std::string() : fields.dump();
  if (spec.fields.size() > kMaxMetaBytes) {  // numbers may grow: 1e9 is written 1000000000.0
    return Status::TooLarge("metadata fields take " + std::to_string(spec.fields.size()) +
                            " bytes written out, over the limit of 16 MiB");
  }
  return spec;
}

uint64_t MakeSignature(ObjectID id, int64_t timestamp_ms) {
  // splitmix64 of the id and time: stable for the object, spread over 63 bits.
  uint64_t z = id.raw() ^ (static_cast<uint64_t>(timestamp_ms) * 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return (z ^ (z >> 31)) & 0x7fffffffffffffffULL;
}

namespace {

// A typename JSON writes as it is: printable ASCII without '"' or '\\' (every real one).
bool PlainAscii(const std::string& s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') return false;
  }
  return true;
}

// ,"key":v
void AppendNumber(std::string* out, std::string_view key, uint64_t v) {
  char buf[24];
  auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
  out->append(",\"").append(key).append("\":").append(buf, static_cast<size_t>(end - buf));
}

}  // namespace

bool AppendRecord(const ObjectRecord& r, std::string* out) {
  if (!PlainAscii(r.type_name) || r.timestamp_ms < 0) return false;
  // The same bytes as EncodeRecord's general path, written directly (a batch encodes
  // thousands of records in its commit; building an ordered_json for each cost more
  // than the RocksDB write itself).
  out->reserve(out->size() + 200 + r.type_name.size() + r.fields.size());
  char id[17] = {'o'};  // ObjectID::ToString without a string
  uint64_t raw = r.id.raw();
  for (int i = 16; i >= 1; --i, raw >>= 4) id[i] = "0123456789abcdef"[raw & 15];
  out->append("{\"v\":1,\"id\":\"").append(id, 17).append("\",\"typename\":\"");
  out->append(r.type_name).append("\"");
  AppendNumber(out, "nbytes", r.nbytes);
  AppendNumber(out, "size", r.size);
  out->append(r.transient ? ",\"transient\":true" : ",\"transient\":false");
  out->append(r.global ? ",\"global\":true" : ",\"global\":false");
  AppendNumber(out, "signature", r.signature);
  AppendNumber(out, "ts", static_cast<uint64_t>(r.timestamp_ms));
  AppendNumber(out, "uid", r.owner.uid);
  AppendNumber(out, "gid", r.owner.gid);
  if (!r.fields.empty()) out->append(",\"fields\":").append(r.fields);
  out->push_back('}');
  return true;
}

std::string EncodeRecord(const ObjectRecord& r) {
  std::string out;
  if (AppendRecord(r, &out)) return out;
  ojson j = {{"v", 1},
             {"id", r.id.ToString()},
             {"typename", r.type_name},
             {"nbytes", r.nbytes},
             {"size", r.size},
             {"transient", r.transient},
             {"global", r.global},
             {"signature", r.signature},
             {"ts", r.timestamp_ms},
             {"uid", r.owner.uid},
             {"gid", r.owner.gid}};
  out = j.dump();
  // The fields are compact JSON already (ParseCreateMeta, DecodeRecord): splice them in
  // last rather than parse and dump them again, which ordered_json does in time
  // quadratic in the number of fields.
  if (!r.fields.empty()) {
    out.pop_back();  // '}'
    out += ",\"fields\":" + r.fields + "}";
  }
  return out;
}

namespace {
// nlohmann converts -1 to a huge unsigned value without complaint: check the kind.
template <typename Json>
uint64_t Unsigned(const Json& j, const char* key) {
  const Json& v = j.at(key);
  if (!v.is_number_unsigned()) {
    throw Json::type_error::create(302, std::string(key) + " must be a non-negative integer", &v);
  }
  return v.template get<uint64_t>();
}
}  // namespace

namespace {

// Reads the members of a fields object in their order (a SAX pass: no DOM, so no
// ordered_json, whose inserts cost time linear in the object's size).
class MemberScanner : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit MemberScanner(Members* out) : out_(out) {}
  bool null() override { return Scalar(); }
  bool boolean(bool) override { return Scalar(); }
  bool number_integer(number_integer_t) override { return Scalar(); }
  bool number_unsigned(number_unsigned_t) override { return Scalar(); }
  bool number_float(number_float_t, const string_t&) override { return Scalar(); }
  bool string(string_t& s) override {
    if (depth_ == 2 && key_ == "id") id_ = s;
    return Scalar();
  }
  bool binary(binary_t&) override { return Scalar(); }
  bool start_object(std::size_t) override {
    if (depth_ == 1) id_.reset();
    ++depth_;
    return true;
  }
  bool end_object() override {
    if (--depth_ == 1 && id_) members_.emplace_back(field_, *id_);
    key_.clear();
    return true;
  }
  bool start_array(std::size_t) override {
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool key(string_t& k) override {
    if (depth_ == 1) field_ = k;
    key_ = k;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }
  Status Finish() {
    for (auto& [field, text] : members_) {
      auto id = ObjectID::Parse(text);
      if (!id.ok()) return id.status();
      out_->emplace_back(field, *id);
    }
    return Status::OK();
  }

 private:
  bool Scalar() {
    if (depth_ == 2) key_.clear();
    return true;
  }
  Members* out_;
  int depth_ = 0;
  std::string field_, key_;
  std::optional<std::string> id_;
  std::vector<std::pair<std::string, std::string>> members_;
};

// The text of the top-level "fields" value when the record is laid out as
// EncodeRecord writes it ("fields" last); "" otherwise.
std::string_view FieldsSlice(std::string_view bytes) {
  static constexpr std::string_view kKey = ",\"fields\":";
  size_t pos = bytes.find(kKey);
  if (pos == std::string_view::npos || bytes.empty() || bytes.back() != '}') return {};
  size_t begin = pos + kKey.size();
  return bytes.substr(begin, bytes.size() - 1 - begin);
}

// Reads a record without fields laid out exactly as EncodeRecord writes it — the
// fixed keys in their order, no spaces, plain ASCII strings, integers that fit — in
// one pass without a JSON tree: loading millions of blobs at mount is mostly this.
// Anything else (fields, escapes, other layouts, values out of range, a bad id) is
// nullopt, and the general decoder below decides, with its precise errors; so both
// give the same record for every input this accepts.
class PlainRecordReader {
 public:
  explicit PlainRecordReader(std::string_view b) : b_(b) {}

  std::optional<ObjectRecord> Read() {
    ObjectRecord r;
    std::string_view id, type;
    uint64_t v = 0, uid = 0, gid = 0;
    if (!Lit("{\"v\":") || !Unsigned(&v) || v != 1 || !Lit(",\"id\":") || !Str(&id) ||
        !Lit(",\"typename\":") || !Str(&type) || type.empty() || !Lit(",\"nbytes\":") ||
        !Unsigned(&r.nbytes) || !Lit(",\"size\":") || !Unsigned(&r.size) ||
        !Lit(",\"transient\":") || !Bool(&r.transient) || !Lit(",\"global\":") ||
        !Bool(&r.global) || !Lit(",\"signature\":") || !Unsigned(&r.signature) ||
        !Lit(",\"ts\":") || !Signed(&r.timestamp_ms) || !Lit(",\"uid\":") || !Unsigned(&uid) ||
        !Lit(",\"gid\":") || !Unsigned(&gid) || !Lit("}") || pos_ != b_.size()) {
      return std::nullopt;
    }
    auto parsed = ObjectID::Parse(id);
    if (!parsed.ok()) return std::nullopt;
    r.id = *parsed;
    r.instance = r.id.instance();
    r.type_name.assign(type);
    r.owner.uid = static_cast<uint32_t>(uid);  // as Unsigned() + static_cast below
    r.owner.gid = static_cast<uint32_t>(gid);
    return r;
  }

 private:
  bool Lit(std::string_view lit) {
    if (b_.substr(pos_, lit.size()) != lit) return false;
    pos_ += lit.size();
    return true;
  }
  bool Str(std::string_view* out) {
    if (!Lit("\"")) return false;
    size_t begin = pos_;
    for (; pos_ < b_.size() && b_[pos_] != '"'; ++pos_) {
      unsigned char c = static_cast<unsigned char>(b_[pos_]);
      if (c < 0x20 || c >= 0x80 || c == '\\') return false;  // escapes, UTF-8: the general way
    }
    if (pos_ == b_.size()) return false;
    *out = b_.substr(begin, pos_ - begin);
    ++pos_;
    return true;
  }
  bool Unsigned(uint64_t* out) {
    size_t begin = pos_;
    uint64_t v = 0;
    for (; pos_ < b_.size() && b_[pos_] >= '0' && b_[pos_] <= '9'; ++pos_) {
      if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, b_[pos_] - '0', &v))
        return false;
    }
    // JSON has no leading zeros ("01"); "0" alone is fine.
    if (pos_ == begin || (b_[begin] == '0' && pos_ - begin > 1)) return false;
    *out = v;
    return true;
  }
  bool Signed(int64_t* out) {
    const bool negative = pos_ < b_.size() && b_[pos_] == '-';
    if (negative) ++pos_;
    uint64_t v = 0;
    if (!Unsigned(&v) || v > static_cast<uint64_t>(INT64_MAX)) return false;
    *out = negative ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
    return true;
  }
  bool Bool(bool* out) {
    if (Lit("true")) {
      *out = true;
    } else if (Lit("false")) {
      *out = false;
    } else {
      return false;
    }
    return true;
  }

  std::string_view b_;
  size_t pos_ = 0;
};

}  // namespace

Result<ObjectRecord> DecodeRecord(std::string_view bytes, bool peer) {
  if (bytes.size() <= kMaxRecordBytes) {
    if (auto plain = PlainRecordReader(bytes).Read()) return std::move(*plain);
  }
  return DecodeRecordGeneral(bytes, peer);
}

Result<ObjectRecord> DecodeRecordGeneral(std::string_view bytes, bool peer) {
  // The same limits as a local create: a record comes from the journal or a peer.
  if (bytes.size() > kMaxRecordBytes) {
    return Status::TooLarge("record is " + std::to_string(bytes.size()) + " bytes, over " +
                            std::to_string(kMaxRecordBytes));
  }
  // Parsed with the unordered json (the fixed keys' order does not matter); the
  // fields keep their text and so their order. One level more than the create form:
  // the record's own braces around "fields".
  auto parsed = ParseJson<nlohmann::json>(bytes, kMaxMetaDepth + 1, "record");
  if (!parsed.ok()) return parsed.status();
  const nlohmann::json& j = *parsed;
  if (!j.is_object()) return Status::InvalidArgument("record is not a JSON object");
  try {
    // A float out of an integer's range converted is undefined behaviour: integers only.
    if (!j.at("v").is_number_integer() || j.at("v").get<int64_t>() != 1)
      return Status::InvalidArgument("unknown record version");
    ObjectRecord r;
    auto id = ObjectID::Parse(j.at("id").get<std::string>());
    if (!id.ok()) return id.status();
    r.id = *id;
    r.instance = r.id.instance();
    r.type_name = j.at("typename").get<std::string>();
    if (r.type_name.empty()) return Status::InvalidArgument("record: typename is empty");
    r.nbytes = Unsigned(j, "nbytes");
    r.size = Unsigned(j, "size");
    r.transient = j.at("transient").get<bool>();
    r.global = j.at("global").get<bool>();
    r.signature = Unsigned(j, "signature");
    if (!j.at("ts").is_number_integer())
      return Status::InvalidArgument("record: ts must be an integer");
    r.timestamp_ms = j.at("ts").get<int64_t>();
    r.owner.uid = static_cast<uint32_t>(Unsigned(j, "uid"));
    r.owner.gid = static_cast<uint32_t>(Unsigned(j, "gid"));
    if (j.contains("fields")) {
      const nlohmann::json& f = j["fields"];
      if (!f.is_object()) return Status::InvalidArgument("record fields are not an object");
      // The member and field-name rules of the create form.
      for (auto& [key, value] : f.items()) {
        if (peer) {
          VY_RETURN_IF_ERROR(ValidateFieldName(key));
        } else if (key.empty() || key.find('/') != std::string::npos) {
          return Status::InvalidArgument("record: field name '" + key + "' is not a file name");
        }
        if (IsReserved(key) || IsConsumed(key)) {
          return Status::InvalidArgument("record: field '" + key + "' may not be a user field");
        }
        if (value.is_object() && value.contains("id")) {
          auto mid = MemberId(key, value);
          if (!mid.ok()) return mid.status();
        }
      }
      std::string_view slice = FieldsSlice(bytes);
      if (slice.size() > kMaxMetaBytes) {  // before any further work on it
        return Status::TooLarge("record fields take " + std::to_string(slice.size()) +
                                " bytes, over the limit of 16 MiB");
      }
      if (slice.empty() || nlohmann::json::parse(slice, nullptr, false) != f) {
        // Not laid out as EncodeRecord writes it: take the slow, ordered way.
        r.fields = ojson::parse(bytes.begin(), bytes.end())["fields"].dump();
      } else {
        r.fields = std::string(slice);
      }
      if (r.fields.size() > kMaxMetaBytes) {
        return Status::TooLarge("record fields take " + std::to_string(r.fields.size()) +
                                " bytes, over the limit of 16 MiB");
      }
      MemberScanner scan(&r.members);
      nlohmann::json::sax_parse(r.fields, &scan);
      VY_RETURN_IF_ERROR(scan.Finish());
    }
    return r;
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(std::string("record: ") + e.what());
  }
}

std::string EncodeName(const NameRecord& n) {
  ojson j{
      {"id", n.id.ToString()}, {"uid", n.owner.uid}, {"gid", n.owner.gid}, {"ts", n.timestamp_ms}};
  if (n.writer != 0) j["w"] = n.writer;
  return j.dump();
}

Result<NameRecord> DecodeName(std::string_view bytes) {
  auto parsed = ParseJson<ojson>(bytes, 1, "name record");
  if (!parsed.ok()) return parsed.status();
  const ojson& j = *parsed;
  if (!j.is_object()) return Status::InvalidArgument("name is not JSON");
  try {
    NameRecord n;
    auto id = ObjectID::Parse(j.at("id").get<std::string>());
    if (!id.ok()) return id.status();
    n.id = *id;
    n.owner.uid = static_cast<uint32_t>(Unsigned(j, "uid"));
    n.owner.gid = static_cast<uint32_t>(Unsigned(j, "gid"));
    n.timestamp_ms = j.at("ts").get<int64_t>();
    if (j.contains("w")) {
      uint64_t w = Unsigned(j, "w");
      if (w > kMaxInstance) return Status::InvalidArgument("name record: bad writer");
      n.writer = static_cast<InstanceId>(w);
    }
    return n;
  } catch (const ojson::exception& e) {
    return Status::InvalidArgument(std::string("name record: ") + e.what());
  }
}

}  // namespace vineyard
