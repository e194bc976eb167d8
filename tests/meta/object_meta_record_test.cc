// Tests meta/object_meta.cc: the journal record format (EncodeRecord/DecodeRecord,
// EncodeName/DecodeName), ValidateName and MakeSignature.
#include "meta/object_meta.h"

#include "object_meta_samples.h"

namespace vineyard {
namespace {

ObjectRecord SampleRecord() {
  ObjectRecord r;
  r.id = ObjectID::Make(false, 2, 42);
  r.type_name = "vineyard::Pair";
  r.nbytes = 1234;
  r.size = 0;
  r.instance = 2;
  r.transient = false;
  r.global = true;
  r.signature = 0x7123456789abcdefULL;
  r.timestamp_ms = 1700000000123;
  r.owner = {1000, 100};
  r.members = {{"first_", *ObjectID::Parse(kA)}, {"second_", *ObjectID::Parse(kB)}};
  r.fields = std::string(R"({"note":"hi","first_":{"id":")") + kA +
             R"("},"n":[1,2],"second_":{"id":")" + kB + R"("}})";
  return r;
}

TEST(Record, EncodeDecodeRoundTripsEveryField) {
  ObjectRecord r = SampleRecord();
  auto back = DecodeRecord(EncodeRecord(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->id, r.id);
  EXPECT_EQ(back->type_name, r.type_name);
  EXPECT_EQ(back->nbytes, r.nbytes);
  EXPECT_EQ(back->size, r.size);
  EXPECT_EQ(back->instance, 2u);
  EXPECT_EQ(back->transient, r.transient);
  EXPECT_EQ(back->global, r.global);
  EXPECT_EQ(back->signature, r.signature);
  EXPECT_EQ(back->timestamp_ms, r.timestamp_ms);
  EXPECT_EQ(back->owner.uid, 1000u);
  EXPECT_EQ(back->owner.gid, 100u);
  EXPECT_EQ(back->fields, r.fields);
  // Members are recovered from the fields, in order.
  EXPECT_EQ(back->members, r.members);
}

// EncodeRecord writes a plain typename's record directly (no ordered_json): the bytes
// must be those of the general path, which dumps the same keys in the same order.
TEST(Record, DirectEncodingIsTheJsonDump) {
  for (bool plain : {true, false}) {
    ObjectRecord r = SampleRecord();
    if (!plain) r.type_name = "odd \"name\"\n\xc3\xa9";  // escapes and UTF-8: general path
    for (bool with_fields : {true, false}) {
      if (!with_fields) r.fields.clear();
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
      if (with_fields) j["fields"] = ojson::parse(r.fields);
      EXPECT_EQ(EncodeRecord(r), j.dump()) << r.type_name;
      auto back = DecodeRecord(EncodeRecord(r));
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      EXPECT_EQ(back->type_name, r.type_name);
    }
  }
}

TEST(Record, BlobRoundTripsWithNoFields) {
  ObjectRecord r;
  r.id = ObjectID::Make(true, 1, 5);
  r.type_name = kBlobTypename;
  r.size = r.nbytes = 4097;
  r.instance = 1;
  r.signature = MakeSignature(r.id, 99);
  r.timestamp_ms = 99;
  auto back = DecodeRecord(EncodeRecord(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->is_blob());
  EXPECT_EQ(back->size, 4097u);
  EXPECT_EQ(back->nbytes, 4097u);
  EXPECT_TRUE(back->transient);
  EXPECT_FALSE(back->global);
  EXPECT_EQ(back->fields, "");
  EXPECT_TRUE(back->members.empty());
}

// DecodeRecord reads blob-like records (no fields, EncodeRecord's layout) in one pass
// and everything else through the JSON tree (DecodeRecordGeneral): for every record and
// every byte-level mutation of one, both must agree on the outcome and the values.
void ExpectSameDecode(const std::string& bytes) {
  SCOPED_TRACE(bytes);
  for (bool peer : {false, true}) {
    auto fast = DecodeRecord(bytes, peer);
    auto general = DecodeRecordGeneral(bytes, peer);
    ASSERT_EQ(fast.ok(), general.ok()) << (fast.ok() ? general : fast).status().ToString();
    if (!fast.ok()) {
      EXPECT_EQ(fast.status().ToString(), general.status().ToString());
      continue;
    }
    EXPECT_EQ(fast->id, general->id);
    EXPECT_EQ(fast->type_name, general->type_name);
    EXPECT_EQ(fast->nbytes, general->nbytes);
    EXPECT_EQ(fast->size, general->size);
    EXPECT_EQ(fast->instance, general->instance);
    EXPECT_EQ(fast->transient, general->transient);
    EXPECT_EQ(fast->global, general->global);
    EXPECT_EQ(fast->signature, general->signature);
    EXPECT_EQ(fast->timestamp_ms, general->timestamp_ms);
    EXPECT_EQ(fast->owner.uid, general->owner.uid);
    EXPECT_EQ(fast->owner.gid, general->owner.gid);
    EXPECT_EQ(fast->fields, general->fields);
    EXPECT_EQ(fast->members, general->members);
  }
}

TEST(Record, OnePassDecodeAgreesWithTheGeneralDecoder) {
  std::vector<ObjectRecord> records;
  for (uint64_t n : {0ull, 1ull, 1024ull, 4097ull, ~0ull}) {
    ObjectRecord r;
    r.id = ObjectID::Make(true, 1 + static_cast<uint32_t>(n % 7), 5 + n % 1000);
    r.type_name = kBlobTypename;
    r.size = r.nbytes = n;
    r.signature = n == ~0ull ? n : MakeSignature(r.id, static_cast<int64_t>(n));
    r.timestamp_ms = n == 1 ? -1234 : n == ~0ull ? INT64_MIN + 1 : static_cast<int64_t>(n) * 1000;
    r.transient = n % 2 == 0;
    r.global = n % 3 == 0;
    r.owner = {static_cast<uint32_t>(n), n == ~0ull ? 0xffffffffu : 7u};
    records.push_back(r);
  }
  ObjectRecord meta = SampleRecord();
  meta.fields.clear();
  meta.members.clear();
  meta.type_name = "vineyard::Pair<int, std::string>";
  records.push_back(meta);
  records.push_back(SampleRecord());  // with fields: the general way
  for (const ObjectRecord& r : records) {
    std::string bytes = EncodeRecord(r);
    auto back = DecodeRecord(bytes);
    ASSERT_TRUE(back.ok()) << bytes << ": " << back.status().ToString();
    EXPECT_EQ(back->size, r.size);
    EXPECT_EQ(back->signature, r.signature);
    EXPECT_EQ(back->timestamp_ms, r.timestamp_ms);
    EXPECT_EQ(back->owner.gid, r.owner.gid);
    ExpectSameDecode(bytes);
    // Every byte removed, doubled or replaced by a character that matters to JSON.
    for (size_t i = 0; i < bytes.size(); ++i) {
      ExpectSameDecode(bytes.substr(0, i) + bytes.substr(i + 1));
      ExpectSameDecode(bytes.substr(0, i + 1) + bytes.substr(i));
      for (char c : {'0', '9', '-', ' ', '"', '\\', '}', ',', '\x80', '\x01', '\0'}) {
        std::string m = bytes;
        m[i] = c;
        ExpectSameDecode(m);
      }
    }
  }
  // Values at and past the edges of their types, and layouts JSON allows.
  const std::string head = R"({"v":1,"id":"o8001000000000005","typename":"vineyard::Blob",)";
  for (const std::string& tail :
       {std::string(R"("nbytes":18446744073709551615,"size":18446744073709551616,)"),
        std::string(R"("nbytes":01,"size":1,)"), std::string(R"("nbytes":-0,"size":1,)"),
        std::string(R"("nbytes":1.0,"size":1,)"), std::string(R"("nbytes":1e3,"size":1,)")}) {
    ExpectSameDecode(head + tail +
                     R"("transient":true,"global":false,"signature":1,"ts":2,"uid":0,"gid":0})");
  }
  for (const char* ts : {"9223372036854775807", "9223372036854775808", "-9223372036854775808",
                                "-9223372036854775809", "-0", "00"}) {
    ExpectSameDecode(head + R"("nbytes":1,"size":1,"transient":true,"global":false,)"
                            R"("signature":1,"ts":)" + std::string(ts) + R"(,"uid":4294967296,"gid":0})");
  }
  ExpectSameDecode(head + R"("nbytes":1,"size":1,"transient":true,"global":false,)"
                          R"("signature":1,"ts":2,"uid":0,"gid":0,"uid":5})");
  ExpectSameDecode(R"({"v":1,"id":"o8001000000000005","typename":"",)"
                   R"("nbytes":1,"size":1,"transient":true,"global":false,)"
                   R"("signature":1,"ts":2,"uid":0,"gid":0})");
  ExpectSameDecode(R"({"v":1,"id":"o800100000000000G","typename":"t",)"
                   R"("nbytes":1,"size":1,"transient":true,"global":false,)"
                   R"("signature":1,"ts":2,"uid":0,"gid":0})");
}

TEST(Record, RecordFromParsedCreateMetaRoundTrips) {
  auto spec = ParseCreateMeta(std::string(R"({"typename":"t","b":{"id":")") + kB +
                              R"("},"x":{"nested":[1,{"id":5}]},"a":{"id":")" + kA + R"("}})");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  ObjectRecord r;
  r.id = ObjectID::Make(false, 1, 1);
  r.type_name = spec->type_name;
  r.members = spec->members;
  r.fields = spec->fields;
  auto back = DecodeRecord(EncodeRecord(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->members, spec->members);
  EXPECT_EQ(back->fields, spec->fields);
}

TEST(Record, DecodeRejectsGarbage) {
  for (const char* bytes :
       {"", "garbage", "{", "[]", "null", "{}", R"({"v":1})", "\xff\xfe\x00\x01"}) {
    auto r = DecodeRecord(bytes);
    EXPECT_FALSE(r.ok()) << bytes;
  }
}

// Finding 4: a peer's record gets exactly the limits of a local create.
TEST(Record, DecodeAppliesTheCreateFormsLimits) {
  ObjectRecord r = SampleRecord();
  auto with_fields = [&](const std::string& fields) {
    ObjectRecord copy = r;
    copy.fields = fields;
    copy.members.clear();
    return DecodeRecord(EncodeRecord(copy), /*peer=*/true);
  };
  // Nesting: the create form's 64 levels fit, 65 do not, 100,000 neither.
  auto nested = [](int depth) {  // a fields object `depth` levels deep
    const size_t n = static_cast<size_t>(depth - 1);
    return R"({"deep":)" + std::string(n, '[') + "1" + std::string(n, ']') + "}";
  };
  EXPECT_TRUE(with_fields(nested(kMaxMetaDepth)).ok());
  for (int depth : {kMaxMetaDepth + 1, 100000}) {
    auto deep = with_fields(nested(depth));
    ASSERT_FALSE(deep.ok()) << depth;
    EXPECT_NE(deep.status().message().find("deeper than"), std::string::npos)
        << deep.status().message();
  }
  // Field names, reserved and consumed keys, malformed members, numbers, NULs.
  for (const std::string& fields :
       {std::string(R"({"..":{"id":"o0001000000000003"}})"), std::string(R"({"":1})"),
        std::string(R"({"a/b":1})"), "{\"" + std::string(256, 'k') + "\":1}",
        std::string(R"({"id":"o0001000000000003"})"), std::string(R"({"typename":"x"})"),
        std::string(R"({"transient":true})"), std::string(R"({"m":{"id":5}})"),
        std::string(R"({"m":{"id":"oXYZ"}})"), std::string(R"({"n":1e400})")}) {
    auto bad = with_fields(fields);
    EXPECT_FALSE(bad.ok()) << fields;
    if (!bad.ok()) {
      EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument) << fields;
    }
  }
  std::string text = EncodeRecord(r);
  EXPECT_FALSE(DecodeRecord(text + std::string("\0junk", 5), true).ok()) << "bytes after a NUL";
  EXPECT_FALSE(DecodeRecord(text + std::string("\0junk", 5)).ok()) << "also from the journal";
  // The journal still loads field names older versions accepted.
  ObjectRecord old = r;
  old.fields = R"({"..":1,")" + std::string(300, 'k') + R"(":2})";
  EXPECT_TRUE(DecodeRecord(EncodeRecord(old)).ok());
  EXPECT_FALSE(DecodeRecord(EncodeRecord(old), /*peer=*/true).ok());
  // Size: fields over 16 MiB are TooLarge; so is a record over kMaxRecordBytes.
  auto big = with_fields(R"({"pad":")" + std::string(kMaxMetaBytes, 'x') + "\"}");
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), Status::Code::kTooLarge) << big.status().ToString();
  auto huge = DecodeRecord(std::string(kMaxRecordBytes + 1, ' '));
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), Status::Code::kTooLarge);
}

TEST(Record, DecodeRejectsEveryIncompleteRecord) {
  ojson full = ojson::parse(EncodeRecord(SampleRecord()));
  for (auto& [key, value] : full.items()) {
    if (key == "fields") continue;  // optional: absent means no fields
    ojson partial = full;
    partial.erase(key);
    auto r = DecodeRecord(partial.dump());
    EXPECT_FALSE(r.ok()) << "accepted a record without '" << key << "'";
  }
}

TEST(Record, DecodeRejectsWrongTypesAndValues) {
  ojson full = ojson::parse(EncodeRecord(SampleRecord()));
  struct Case {
    const char* key;
    ojson value;
  };
  const std::vector<Case> cases = {
      {"v", 2},           {"v", "1"},
      {"id", "o1"},       {"id", 7},
      {"typename", 1},    {"nbytes", "10"},
      {"size", "x"},      {"transient", 1},
      {"global", "true"}, {"signature", "s"},
      {"ts", "now"},      {"gid", "root"},
      {"fields", "a"},    {"fields", ojson::array()},
  };
  for (const auto& c : cases) {
    ojson j = full;
    j[c.key] = c.value;
    auto r = DecodeRecord(j.dump());
    EXPECT_FALSE(r.ok()) << c.key << "=" << c.value.dump();
  }
  // A member whose id is malformed.
  ojson j = full;
  j["fields"]["first_"]["id"] = "o000";
  EXPECT_FALSE(DecodeRecord(j.dump()).ok());
}

// A negative number in an unsigned field is a corrupt record, not a huge value.
TEST(Record, DecodeRejectsNegativeUnsignedFields) {
  ojson full = ojson::parse(EncodeRecord(SampleRecord()));
  for (const char* key : {"nbytes", "size", "signature", "uid", "gid"}) {
    ojson j = full;
    j[key] = -1;
    auto r = DecodeRecord(j.dump());
    EXPECT_FALSE(r.ok()) << key << "=-1 accepted";
  }
}

TEST(Name, EncodeDecodeRoundTrips) {
  NameRecord n{ObjectID::Make(true, 4, 77), {501, 20}, 1700000000999};
  auto back = DecodeName(EncodeName(n));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->id, n.id);
  EXPECT_EQ(back->owner.uid, 501u);
  EXPECT_EQ(back->owner.gid, 20u);
  EXPECT_EQ(back->timestamp_ms, 1700000000999);
}

TEST(Name, DecodeRejectsGarbageAndIncompleteRecords) {
  for (const char* bytes : {"", "x", "[]", "{}", R"({"id":"o0001000000000001"})",
                            R"({"id":"bad","uid":0,"gid":0,"ts":0})",
                            R"({"id":"o0001000000000001","uid":"a","gid":0,"ts":0})"}) {
    EXPECT_FALSE(DecodeName(bytes).ok()) << bytes;
  }
}

TEST(ValidateName, AcceptsOrdinaryFileNames) {
  for (const char* name : {"foo", "a.b", "...", ".hidden", "with space", "ünïcode", "x-y_z"}) {
    EXPECT_TRUE(ValidateName(name).ok()) << name;
  }
  EXPECT_TRUE(ValidateName(std::string(255, 'n')).ok());
}

TEST(ValidateName, RejectsUnusableFileNames) {
  const std::vector<std::string> bad = {
      "", ".", "..", "a/b", "/", "a/", std::string("a\0b", 3), std::string(256, 'n')};
  for (const auto& name : bad) {
    Status s = ValidateName(name);
    EXPECT_FALSE(s.ok()) << "accepted '" << name << "'";
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  }
}

TEST(MakeSignature, IsDeterministicAndFitsIn63Bits) {
  ObjectID id = ObjectID::Make(false, 1, 1);
  EXPECT_EQ(MakeSignature(id, 5), MakeSignature(id, 5));
  EXPECT_NE(MakeSignature(id, 5), MakeSignature(id, 6));
  EXPECT_NE(MakeSignature(id, 5), MakeSignature(ObjectID::Make(false, 1, 2), 5));
  EXPECT_EQ(MakeSignature(id, 5) >> 63, 0u);
}

}  // namespace
}  // namespace vineyard
