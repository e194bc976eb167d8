// IndexedOrderedMap (meta/ordered_map.h), the object type of meta/'s ojson: the same
// documents as nlohmann::ordered_json (key order, a repeated key overwriting in place,
// erase, lookups), above and below the size where the hash index starts, and the
// metadata of many fields through the create form and the renderer.
#include "meta/ordered_map.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "meta/json.h"
#include "meta/object_meta.h"

namespace vineyard {
namespace {

std::string RandomDoc(std::mt19937* rng, int keys) {
  std::string s = "{";
  for (int i = 0; i < keys; ++i) {
    if (i) s += ",";
    // Few distinct keys: repeats are common.
    s += "\"k" + std::to_string((*rng)() % (keys / 2 + 1)) + "\":";
    s += (*rng)() % 4 == 0 ? "{\"n\":" + std::to_string(i) + ",\"n\":" + std::to_string(-i) + "}"
                           : std::to_string(i);
  }
  return s + "}";
}

TEST(IndexedOrderedMap, ParsesAndDumpsExactlyAsOrderedJson) {
  std::mt19937 rng(17);
  for (int keys : {0, 1, 5, 15, 16, 17, 40, 300, 3000}) {
    for (int round = 0; round < 5; ++round) {
      const std::string doc = RandomDoc(&rng, keys);
      EXPECT_EQ(ojson::parse(doc).dump(), nlohmann::ordered_json::parse(doc).dump()) << doc;
    }
  }
}

TEST(IndexedOrderedMap, LookupsInsertsAndErasesKeepOrderAndIndex) {
  ojson j = ojson::object();
  nlohmann::ordered_json o = nlohmann::ordered_json::object();
  for (int i = 0; i < 100; ++i) {
    const std::string k = "key" + std::to_string(i * 7 % 100);
    j[k] = i;
    o[k] = i;
  }
  for (int i = 0; i < 100; i += 3) {
    const std::string k = "key" + std::to_string(i);
    EXPECT_EQ(j.erase(k), o.erase(k));
  }
  j["key3"] = "again";  // erased above, so it goes last
  o["key3"] = "again";
  EXPECT_EQ(j.dump(), o.dump());
  for (int i = 0; i < 100; ++i) {
    const std::string k = "key" + std::to_string(i);
    ASSERT_EQ(j.contains(k), o.contains(k)) << k;
    if (o.contains(k)) {
      EXPECT_EQ(j.at(k), ojson(o.at(k))) << k;
    }
  }
  EXPECT_THROW(j.at("absent"), ojson::out_of_range);
  j.clear();
  EXPECT_TRUE(j.empty());
  j["x"] = 1;
  EXPECT_EQ(j.dump(), R"({"x":1})");
}

TEST(IndexedOrderedMap, MetadataOfManyFieldsKeepsItsOrderThroughCreateAndRecord) {
  std::string doc = R"({"typename":"t")";
  for (int i = 50000; i > 0; --i) doc += ",\"f" + std::to_string(i) + "\":" + std::to_string(i);
  doc += "}";
  auto spec = ParseCreateMeta(doc);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  const auto fields = nlohmann::ordered_json::parse(spec->fields);
  ASSERT_EQ(fields.size(), 50000u);
  EXPECT_EQ(fields.begin().key(), "f50000");
  EXPECT_EQ((--fields.end()).key(), "f1");
}

}  // namespace
}  // namespace vineyard
