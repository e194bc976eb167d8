// Tests meta/batch_plain.cc against meta/batch.cc: the one-pass parse of the manifest
// the Python client writes (ParseBatchPlain) gives the same spec as the general parse
// through a JSON tree (ParseBatchGeneral) for everything it takes, takes the client's
// form, and leaves everything else — every refusal included — to the general parse.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "meta/batch.h"

namespace vineyard {
namespace {

// What the Python client writes for a put of a list of `n` float64 arrays of 1 KiB
// (python/vineyardfs/batch.py: Tensor entries from a template, then the List).
std::string ClientList(int n) {
  std::string m = "{\"entries\":[";
  for (int i = 0; i < n; ++i) {
    m += "{\"blob\":[" + std::to_string(i * 1024) + ",1024]},";
    m += "{\"meta\":{\"typename\":\"vineyard::Tensor<double>\",\"value_type_\":\"float64\","
         "\"value_type_meta_\":\"<f8\",\"shape_\":\"[128]\",\"partition_index_\":\"[]\","
         "\"order_\":\"\\\"C\\\"\",\"nbytes\":1024,\"buffer_\":{\"id\":\"#" +
         std::to_string(2 * i) + "\"}}},";
  }
  m += "{\"meta\":{\"typename\":\"vineyard::List\",\"size_\":" + std::to_string(n);
  for (int i = 0; i < n; ++i) {
    m += ",\"__elements_-" + std::to_string(i) + "\":{\"id\":\"#" + std::to_string(2 * i + 1) +
         "\"}";
  }
  return m + "}}],\"root\":" + std::to_string(2 * n) + "}";
}

// And for a DataFrame of `n` columns: an index, then the columns, then the frame.
std::string ClientFrame(int n) {
  std::string m =
      "{\"entries\":[{\"meta\":{\"typename\":\"vineyard::RangeIndex\",\"name\":\"null\","
      "\"start_\":0,\"stop_\":128,\"step_\":1}}";
  for (int i = 0; i < n; ++i) {
    m += ",{\"blob\":[" + std::to_string(i * 1024) + ",1024]}";
    m += ",{\"meta\":{\"typename\":\"vineyard::Tensor<double>\",\"shape_\":\"[128]\","
         "\"nbytes\":1024,\"buffer_\":{\"id\":\"#" +
         std::to_string(2 * i + 1) + "\"}}}";
  }
  m += ",{\"meta\":{\"typename\":\"vineyard::DataFrame\",\"index_\":{\"id\":\"#0\"}";
  for (int i = 0; i < n; ++i) {
    m += ",\"__values_-key-" + std::to_string(i) + "\":\"\\\"c" + std::to_string(i) + "\\\"\"";
    m += ",\"__values_-value-" + std::to_string(i) + "\":{\"id\":\"#" + std::to_string(2 * i + 2) +
         "\"}";
  }
  return m + ",\"__values_-size\":" + std::to_string(n) + ",\"row_batch_index_\":0}}]}";
}

// The two parses agree: the same spec, or the same refusal.
void ExpectSame(const Result<BatchSpec>& a, const Result<BatchSpec>& b, const std::string& m) {
  ASSERT_EQ(a.ok(), b.ok()) << m << "\n" << (a.ok() ? b : a).status().ToString();
  if (!a.ok()) {
    EXPECT_EQ(a.status().code(), b.status().code()) << m;
    EXPECT_EQ(a.status().message(), b.status().message()) << m;
    return;
  }
  ASSERT_EQ(a->entries.size(), b->entries.size()) << m;
  EXPECT_EQ(a->root, b->root) << m;
  EXPECT_EQ(a->ids, b->ids) << m;
  for (size_t i = 0; i < a->entries.size(); ++i) {
    const BatchEntry& x = a->entries[i];
    const BatchEntry& y = b->entries[i];
    EXPECT_EQ(x.blob, y.blob) << m << " entry " << i;
    EXPECT_EQ(x.offset, y.offset) << m << " entry " << i;
    EXPECT_EQ(x.size, y.size) << m << " entry " << i;
    EXPECT_EQ(x.refs, y.refs) << m << " entry " << i;
    EXPECT_EQ(x.spec.type_name, y.spec.type_name) << m << " entry " << i;
    EXPECT_EQ(x.spec.global, y.spec.global) << m << " entry " << i;
    EXPECT_EQ(x.spec.persist, y.spec.persist) << m << " entry " << i;
    EXPECT_EQ(x.spec.members, y.spec.members) << m << " entry " << i;
    EXPECT_EQ(x.spec.fields, y.spec.fields) << m << " entry " << i;
  }
}

// Whether the plain parse took `m`; checks it against the general parse either way,
// and that ParseBatch gives what the general parse gives.
bool Taken(const std::string& m, uint64_t payload = 1 << 20) {
  auto plain = ParseBatchPlain(m, payload);
  auto general = ParseBatchGeneral(m, payload);
  if (plain) {
    EXPECT_TRUE(plain->ok()) << m;  // stand-in ids cannot fail
    ExpectSame(*plain, general, m);
  }
  ExpectSame(ParseBatch(m, payload), general, m);
  return plain.has_value();
}

TEST(BatchPlain, TakesWhatThePythonClientWrites) {
  EXPECT_TRUE(Taken(ClientList(3)));
  EXPECT_TRUE(Taken(ClientList(1000)));
  EXPECT_TRUE(Taken(ClientFrame(3)));
  EXPECT_TRUE(Taken(ClientFrame(1000)));
  auto b = ParseBatchPlain(ClientList(2), 1 << 20);
  ASSERT_TRUE(b && b->ok());
  const BatchSpec& s = **b;
  ASSERT_EQ(s.entries.size(), 5u);
  EXPECT_EQ(s.root, 4u);
  EXPECT_TRUE(s.entries[2].blob);
  EXPECT_EQ(s.entries[2].offset, 1024u);
  EXPECT_EQ(s.entries[3].spec.type_name, "vineyard::Tensor<double>");
  EXPECT_EQ(s.entries[3].refs, std::vector<uint32_t>{2});
  // The member is the stand-in id of entry 2, in the members and in the fields' text.
  ASSERT_EQ(s.entries[3].spec.members.size(), 1u);
  EXPECT_EQ(s.entries[3].spec.members[0].second, s.ids[2]);
  EXPECT_NE(s.entries[3].spec.fields.find("\"buffer_\":{\"id\":\"" + s.ids[2].ToString()),
            std::string::npos);
  EXPECT_EQ(s.entries[3].spec.fields.find("nbytes"), std::string::npos);
}

// Each of these the plain parse takes (and agrees on), or leaves to the general one.
TEST(BatchPlain, TakesOnlyWhatItWritesBackTheSame) {
  const std::string b = "{\"blob\":[0,1]}";
  auto one = [&](const std::string& meta) {
    return "{\"entries\":[" + b + ",{\"meta\":" + meta + "}]}";
  };
  EXPECT_TRUE(Taken(one(R"({"typename":"t","m":{"id":"#0"}})")));
  EXPECT_TRUE(Taken(one(R"({"typename":"t","m":{"id":"#0"},"o":{"id":"o0001000000000003"}})")));
  EXPECT_TRUE(Taken(one(
      R"({"typename":"t","m":{"id":"#0"},"s":"a\"b\\c\n\t\r\b\f","n":-12,"z":0,"a":[1,[2,[]],{},"x",true,false,null],"e":{},"global":true})")));
  EXPECT_TRUE(Taken(one(R"({"transient":false,"typename":"t","nbytes":[1,{}],"m":{"id":"#0"}})")));
  EXPECT_TRUE(Taken(
      "{\"entries\":[" + b + "," + b +
      ",{\"meta\":{\"typename\":\"t\",\"a\":{\"id\":\"#1\"},\"b\":{\"id\":\"#0\"}}}],\"root\":2}"));
  EXPECT_TRUE(Taken(R"({"entries":[{"meta":{"typename":"t"}}]})"));
  // Left to the general parse: it writes these back differently, or refuses them.
  for (const char* meta : {
           R"({"typename":"t","m":{"id":"#0"},"f":1.5})",  // a float
           R"({"typename":"t","m":{"id":"#0"},"f":1e2})",
           R"({"typename":"t","m":{"id":"#0"},"n":-0})",  // dumped 0
           R"({"typename":"t","m":{"id":"#0"},"n":1234567890123456789})",
           R"({"typename":"t","m":{"id":"#0"},"s":"\/"})",  // dumped /
           R"({"typename":"t","m":{"id":"#0"},"s":"\u0041"})",
           "{\"typename\":\"t\",\"m\":{\"id\":\"#0\"},\"s\":\"\xc3\xa9\"}",  // UTF-8
           R"({"typename":"t","m":{"id":"#0"},"o":{"a":1}})",                // an object
           R"({"typename":"t","m":{"id":"#0"},"m":{"id":"#0"}})",            // a repeated key
           R"({"typename":"t","m":{"id":"#0","x":1}})",
           R"({"typename":"t","m":{"id":"#00"}})",  // refused
           R"({"typename":"t","m":{"id":"#1"}})",
           R"({"typename":"t","m":{"id":"o1"}})",
           R"({"typename":"","m":{"id":"#0"}})",
           R"({"typename":"t","id":1,"m":{"id":"#0"}})",
           R"({"typename":"t","a/b":1,"m":{"id":"#0"}})",
           R"({"typename":"t","..":1,"m":{"id":"#0"}})",
           R"({"typename":"t","global":1,"m":{"id":"#0"}})",
           R"({"m":{"id":"#0"}})",
           R"({"typename":"t"})",                   // blob unreached
           R"({"typename":"t", "m":{"id":"#0"}})",  // whitespace
       }) {
    EXPECT_FALSE(Taken(one(meta))) << meta;
  }
  for (const std::string& m : std::vector<std::string>{
           "{\"entries\":[" + b + "],\"root\":1}", "{\"root\":0,\"entries\":[" + b + "]}",
           "{\"entries\":[]}", "{\"entries\":[" + b + "]} ",
           "{\"entries\":[{\"blob\":[0,2000000]}]}", "{\"entries\":[{\"blob\":[01,0]}]}",
           "{\"entries\":[{\"blob\":[0,1],\"x\":1}]}", "{\"entries\":[" + b + "],\"x\":1}",
           "\xef\xbb\xbf{\"entries\":[" + b + "]}",
           "{\"entries\":[" + b + "],\"root\":0,\"root\":0}"}) {
    EXPECT_FALSE(Taken(m)) << m;
  }
}

// A key repeated in an object of more keys than the linear check covers.
TEST(BatchPlain, FindsRepeatedKeysInLargeObjects) {
  for (int at : {3, 20, 200}) {
    std::string m = "{\"entries\":[{\"meta\":{\"typename\":\"t\"";
    for (int i = 0; i < 300; ++i) m += ",\"k" + std::to_string(i) + "\":" + std::to_string(i);
    EXPECT_TRUE(Taken(m + "}}]}"));
    EXPECT_FALSE(Taken(m + ",\"k" + std::to_string(at) + "\":1}}]}")) << at;
  }
}

// The ids are asked for once, only for a manifest the plain parse takes; their
// failure is the parse's.
TEST(BatchPlain, AsksForIdsOnceAndPassesTheirFailureOn) {
  int calls = 0;
  BatchIds ids = [&](const std::vector<bool>& blob) -> Result<std::vector<ObjectID>> {
    ++calls;
    std::vector<ObjectID> out;
    for (size_t i = 0; i < blob.size(); ++i) out.push_back(ObjectID::Make(blob[i], 7, 100 + i));
    return out;
  };
  auto b = ParseBatchPlain(ClientList(4), 1 << 20, ids);
  ASSERT_TRUE(b && b->ok());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ((*b)->entries[1].spec.members[0].second, ObjectID::Make(true, 7, 100));
  ExpectSame(*b, ParseBatchGeneral(ClientList(4), 1 << 20, ids), "ids");
  calls = 0;
  EXPECT_FALSE(ParseBatchPlain("{\"entries\":[{\"blob\":[0,1]}],\"root\":1}", 1, ids));
  EXPECT_EQ(calls, 0);
  BatchIds failing = [](const std::vector<bool>&) -> Result<std::vector<ObjectID>> {
    return Status::NoSpace("no ids left");
  };
  auto f = ParseBatch(ClientList(2), 1 << 20, failing);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message(), "no ids left");
}

// Differential: random edits of the client's manifests and of small ones; whatever
// the plain parse takes, the general one gives the same for.
TEST(BatchPlain, AgreesWithTheGeneralParseOnEditedManifests) {
  std::mt19937 rng(17);
  const std::string alphabet = "{}[],:\"#\\0123456789-.eE tfnulo/abx";
  std::vector<std::string> seeds = {
      ClientList(3), ClientFrame(2),
      R"({"entries":[{"blob":[0,3]},{"meta":{"typename":"t","b":{"id":"#0"},"g":"x","a":[1,"y"]}}],"root":1})",
      R"({"entries":[{"meta":{"typename":"a"}},{"meta":{"typename":"b","x":{"id":"#0"},"y":{"id":"o0001000000000003"}}}]})"};
  int taken = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string m = seeds[round % seeds.size()];
    for (int edits = 1 + static_cast<int>(rng() % 3); edits > 0; --edits) {
      const size_t at = rng() % m.size();
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0:
          m[at] = c;
          break;
        case 1:
          m.insert(m.begin() + static_cast<long>(at), c);
          break;
        default:
          m.erase(at, 1 + rng() % 4);
          break;
      }
      if (m.empty()) m = "{";
    }
    taken += Taken(m, rng() % 8000) ? 1 : 0;
    if (HasFailure()) break;
  }
  EXPECT_GT(taken, 500);  // the edits are not all refusals
}

}  // namespace
}  // namespace vineyard
