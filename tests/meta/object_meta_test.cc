// Tests meta/object_meta.cc: the create form (ParseCreateMeta). The journal record
// format (EncodeRecord/DecodeRecord, EncodeName/DecodeName) and ValidateName are in
// object_meta_record_test.cc.
#include "meta/object_meta.h"

#include "object_meta_samples.h"

namespace vineyard {
namespace {

std::string Nested(int depth) {
  // `depth` levels in total, the top-level object included.
  std::string s = R"({"typename":"t","deep":)";
  for (int i = 1; i < depth; ++i) s += "[";
  s += "1";
  for (int i = 1; i < depth; ++i) s += "]";
  s += "}";
  return s;
}

TEST(ParseCreateMeta, DetectsTopLevelMembers) {
  auto spec = ParseCreateMeta(std::string(R"({"typename":"vineyard::Pair","first_":{"id":")") + kA +
                              R"("},"second_":{"id":")" + kB + R"("},"note":"hi"})");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->type_name, "vineyard::Pair");
  ASSERT_EQ(spec->members.size(), 2u);
  EXPECT_EQ(spec->members[0].first, "first_");
  EXPECT_EQ(spec->members[0].second, *ObjectID::Parse(kA));
  EXPECT_EQ(spec->members[1].first, "second_");
  EXPECT_EQ(spec->members[1].second, *ObjectID::Parse(kB));
}

TEST(ParseCreateMeta, NestedIdIsNotAMember) {
  auto spec = ParseCreateMeta(std::string(R"({"typename":"t","x":{"y":{"id":")") + kA +
                              R"("}},"arr":[{"id":")" + kA + R"("}]})");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_TRUE(spec->members.empty());
  auto fields = ojson::parse(spec->fields);
  EXPECT_EQ(fields["x"]["y"]["id"], kA);
}

TEST(ParseCreateMeta, KeepsPlainFieldsInOrder) {
  auto spec = ParseCreateMeta(std::string(R"({"zeta":1,"typename":"t","alpha":"two","m":{"id":")") +
                              kA + R"("},"mid":[1,2,{"k":null}],"beta":true})");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  auto fields = ojson::parse(spec->fields);
  std::vector<std::string> keys;
  for (auto& [k, v] : fields.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"zeta", "alpha", "m", "mid", "beta"}));
  EXPECT_EQ(fields["zeta"], 1);
  EXPECT_EQ(fields["alpha"], "two");
  EXPECT_EQ(fields["m"], (ojson{{"id", kA}}));
  EXPECT_EQ(fields["mid"].dump(), R"([1,2,{"k":null}])");
  EXPECT_EQ(fields["beta"], true);
  // The fixed fields are not duplicated into the user's fields.
  EXPECT_FALSE(fields.contains("typename"));
}

TEST(ParseCreateMeta, NoPlainFieldsGivesEmptyFields) {
  auto spec = ParseCreateMeta(R"({"typename":"t"})");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->fields, "");
  EXPECT_FALSE(spec->global);
  EXPECT_FALSE(spec->persist);
}

TEST(ParseCreateMeta, RequiresTypename) {
  for (const char* doc : {R"({"a":1})", R"({})", R"({"typename":""})", R"({"typename":5})"}) {
    auto spec = ParseCreateMeta(doc);
    ASSERT_FALSE(spec.ok()) << doc;
    EXPECT_EQ(spec.status().code(), Status::Code::kInvalidArgument) << doc;
    EXPECT_NE(spec.status().message().find("typename"), std::string::npos) << doc;
  }
}

TEST(ParseCreateMeta, GlobalImpliesPersist) {
  auto spec = ParseCreateMeta(R"({"typename":"t","global":true})");
  ASSERT_TRUE(spec.ok());
  EXPECT_TRUE(spec->global);
  EXPECT_TRUE(spec->persist);
  // Even when "transient": true is also given.
  spec = ParseCreateMeta(R"({"typename":"t","global":true,"transient":true})");
  ASSERT_TRUE(spec.ok());
  EXPECT_TRUE(spec->persist);
  spec = ParseCreateMeta(R"({"typename":"t","global":false})");
  ASSERT_TRUE(spec.ok());
  EXPECT_FALSE(spec->global);
  EXPECT_FALSE(spec->persist);
}

TEST(ParseCreateMeta, TransientFalseMeansPersist) {
  auto spec = ParseCreateMeta(R"({"typename":"t","transient":false})");
  ASSERT_TRUE(spec.ok());
  EXPECT_TRUE(spec->persist);
  EXPECT_FALSE(spec->global);
  spec = ParseCreateMeta(R"({"typename":"t","transient":true})");
  ASSERT_TRUE(spec.ok());
  EXPECT_FALSE(spec->persist);
}

TEST(ParseCreateMeta, RejectsNonBooleanGlobalAndTransient) {
  EXPECT_FALSE(ParseCreateMeta(R"({"typename":"t","global":"yes"})").ok());
  EXPECT_FALSE(ParseCreateMeta(R"({"typename":"t","transient":0})").ok());
}

TEST(ParseCreateMeta, RejectsReservedFields) {
  for (const char* key : {"id", "instance_id", "signature", "__timestamp"}) {
    std::string doc = std::string(R"({"typename":"t",")") + key + R"(":"o0001000000000001"})";
    auto spec = ParseCreateMeta(doc);
    ASSERT_FALSE(spec.ok()) << key;
    EXPECT_EQ(spec.status().code(), Status::Code::kInvalidArgument) << key;
    EXPECT_NE(spec.status().message().find(key), std::string::npos) << spec.status().message();
    // A number is just as reserved.
    doc = std::string(R"({"typename":"t",")") + key + R"(":1})";
    EXPECT_FALSE(ParseCreateMeta(doc).ok()) << key;
  }
}

TEST(ParseCreateMeta, IgnoresNbytes) {
  auto spec = ParseCreateMeta(R"({"typename":"t","nbytes":12345,"x":1})");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  auto fields = ojson::parse(spec->fields);
  EXPECT_FALSE(fields.contains("nbytes"));
  EXPECT_EQ(fields["x"], 1);
}

TEST(ParseCreateMeta, RejectsOver16MiBWithTooLarge) {
  std::string doc = R"({"typename":"t","pad":")";
  doc += std::string(kMaxMetaBytes - doc.size() - 2, 'x');
  doc += "\"}";
  ASSERT_EQ(doc.size(), kMaxMetaBytes);
  auto at_limit = ParseCreateMeta(doc);
  EXPECT_TRUE(at_limit.ok()) << at_limit.status().ToString();

  doc.insert(doc.size() - 2, "x");
  ASSERT_EQ(doc.size(), kMaxMetaBytes + 1);
  auto over = ParseCreateMeta(doc);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), Status::Code::kTooLarge);
}

TEST(ParseCreateMeta, AcceptsNesting64RejectsNesting65) {
  auto ok = ParseCreateMeta(Nested(kMaxMetaDepth));
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
  auto deep = ParseCreateMeta(Nested(kMaxMetaDepth + 1));
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(deep.status().message().find("64"), std::string::npos) << deep.status().message();
}

TEST(ParseCreateMeta, BracketsInsideStringsDoNotCountAsNesting) {
  std::string doc = R"({"typename":"t","s":")" + std::string(200, '[') + R"(\"{{{"})";
  auto spec = ParseCreateMeta(doc);
  EXPECT_TRUE(spec.ok()) << spec.status().ToString();
}

TEST(ParseCreateMeta, HugeNestingIsRejectedWithoutCrashing) {
  std::string doc = R"({"typename":"t","a":)" + std::string(100000, '[');
  auto spec = ParseCreateMeta(doc);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), Status::Code::kInvalidArgument);
}

// Issue 14, finding 3: a number beyond a double killed the daemon (an uncaught
// out_of_range 406 from the second, exception-throwing parse).
TEST(ParseCreateMeta, NumberOutOfRangeIsInvalidArgumentWithTheReason) {
  for (const char* n : {"1e400", "-1e400", "1e309", "[1,2,1e999]"}) {
    const std::string doc = std::string(R"({"typename":"t","n":)") + n + "}";
    Result<CreateSpec> spec = Status::IOError("not parsed");
    EXPECT_NO_THROW(spec = ParseCreateMeta(doc)) << doc;
    ASSERT_FALSE(spec.ok()) << doc;
    EXPECT_EQ(spec.status().code(), Status::Code::kInvalidArgument) << doc;
    EXPECT_NE(spec.status().message().find("number overflow"), std::string::npos)
        << spec.status().message();
  }
  // Tiny and huge-but-finite numbers are fine.
  EXPECT_TRUE(ParseCreateMeta(R"({"typename":"t","n":1e-400,"m":1e308})").ok());
}

// Finding 7: the parser takes a NUL for the end of the input.
TEST(ParseCreateMeta, NulAndTrailingBytesAreRefused) {
  for (const std::string& doc :
       {std::string("{\"typename\":\"t\"}\0garbage", 24), std::string("{\"typename\":\"t\"}\0", 17),
        std::string("{\"typename\":\"t\",\"s\":\"a\0b\"}", 26),
        std::string(R"({"typename":"t"} {"x":1})")}) {
    auto spec = ParseCreateMeta(doc);
    ASSERT_FALSE(spec.ok()) << doc;
    EXPECT_EQ(spec.status().code(), Status::Code::kInvalidArgument);
  }
  auto nul = ParseCreateMeta(std::string("{\"typename\":\"t\"}\0garbage", 24));
  EXPECT_NE(nul.status().message().find("NUL byte at offset 16"), std::string::npos)
      << nul.status().message();
  EXPECT_TRUE(ParseCreateMeta("{\"typename\":\"t\"}\n  \t").ok()) << "whitespace may follow";
}

// Finding 7: "." and ".." as member names made members/ list them twice and the
// members unreachable; a name over 255 bytes cannot be a file name either.
TEST(ParseCreateMeta, FieldNamesMustBeFileNames) {
  const std::string member = std::string(R"({"id":")") + kA + R"("})";
  for (const std::string& key : {std::string("."), std::string(".."), std::string(""),
                                 std::string("a/b"), std::string(256, 'k')}) {
    for (const std::string& value : {member, std::string("1")}) {
      const std::string doc = R"({"typename":"t",)" + ojson(key).dump() + ":" + value + "}";
      auto spec = ParseCreateMeta(doc);
      ASSERT_FALSE(spec.ok()) << doc;
      EXPECT_EQ(spec.status().code(), Status::Code::kInvalidArgument) << doc;
    }
  }
  auto nul = ParseCreateMeta(R"({"typename":"t","a\u0000b":1})");
  EXPECT_FALSE(nul.ok()) << "a NUL in a field name";
  auto longest =
      ParseCreateMeta(R"({"typename":"t",")" + std::string(255, 'k') + "\":" + member + "}");
  EXPECT_TRUE(longest.ok()) << longest.status().ToString();
  EXPECT_TRUE(ParseCreateMeta(R"({"typename":"t","...":1,".a":2})").ok());
}

TEST(ParseCreateMeta, FieldsWrittenOutOver16MiBAreTooLarge) {
  // 1e9 is written back as 1000000000.0: 12 bytes in, 16 out per element.
  std::string doc = R"({"typename":"t","a":[)";
  while (doc.size() < kMaxMetaBytes - 16) doc += "1e9,";
  doc.back() = ']';
  doc += "}";
  ASSERT_LE(doc.size(), kMaxMetaBytes);
  auto spec = ParseCreateMeta(doc);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), Status::Code::kTooLarge) << spec.status().ToString();
}

TEST(ParseCreateMeta, RejectsEmptyFieldName) {
  auto spec = ParseCreateMeta(R"({"typename":"t","":1})");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), Status::Code::kInvalidArgument);
}

TEST(ParseCreateMeta, RejectsFieldNameWithSlash) {
  auto spec = ParseCreateMeta(R"({"typename":"t","a/b":1})");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(spec.status().message().find("a/b"), std::string::npos);
  spec = ParseCreateMeta(std::string(R"({"typename":"t","m/":{"id":")") + kA + R"("}})");
  EXPECT_FALSE(spec.ok());
}

TEST(ParseCreateMeta, InvalidJsonSaysSo) {
  for (const char* doc : {"", "{", R"({"typename":"t",})", "{'typename':'t'}", "nope",
                          R"({"typename":"t"} trailing)"}) {
    auto spec = ParseCreateMeta(doc);
    ASSERT_FALSE(spec.ok()) << doc;
    EXPECT_EQ(spec.status().code(), Status::Code::kInvalidArgument) << doc;
    EXPECT_NE(spec.status().message().find("invalid JSON"), std::string::npos)
        << doc << " -> " << spec.status().message();
  }
}

TEST(ParseCreateMeta, RejectsNonObjectTopLevel) {
  for (const char* doc : {"[]", R"(["typename"])", "1", R"("typename")", "null", "true"}) {
    auto spec = ParseCreateMeta(doc);
    ASSERT_FALSE(spec.ok()) << doc;
    EXPECT_EQ(spec.status().code(), Status::Code::kInvalidArgument) << doc;
  }
}

TEST(ParseCreateMeta, RejectsMalformedMemberId) {
  for (const char* id : {R"("o1")", R"("O0001000000000003")", R"("o0000000000000000")",
                         R"("o000100000000000G")", "3", "null"}) {
    std::string doc = std::string(R"({"typename":"t","m":{"id":)") + id + "}}";
    auto spec = ParseCreateMeta(doc);
    ASSERT_FALSE(spec.ok()) << doc;
    EXPECT_EQ(spec.status().code(), Status::Code::kInvalidArgument) << doc;
    EXPECT_NE(spec.status().message().find("'m'"), std::string::npos) << spec.status().message();
  }
}

}  // namespace
}  // namespace vineyard
