// Tests meta/object_id.cc: the printed form of ObjectID and the IdAllocator's
// never-reuse guarantee across restarts.
#include "meta/object_id.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace vineyard {
namespace {

TEST(ObjectID, PrintsAsOAndSixteenLowercaseHexDigits) {
  ObjectID id = ObjectID::Make(/*blob=*/true, /*instance=*/1, /*counter=*/2);
  EXPECT_EQ(id.ToString(), "o8001000000000002");
  EXPECT_EQ(ObjectID(0xabcdef).ToString(), "o0000000000abcdef");
}

TEST(ObjectID, ParseRoundTripsToString) {
  for (uint64_t raw : {uint64_t{1}, uint64_t{0x0001000000000003}, uint64_t{0x8001000000000002},
                       uint64_t{0xffffffffffffffff}, uint64_t{0x7fff123456789abc}}) {
    ObjectID id(raw);
    auto parsed = ObjectID::Parse(id.ToString());
    ASSERT_TRUE(parsed.ok()) << id.ToString() << ": " << parsed.status().ToString();
    EXPECT_EQ(*parsed, id);
    EXPECT_EQ(parsed->raw(), raw);
  }
}

TEST(ObjectID, BlobBitIsBit63) {
  ObjectID blob = ObjectID::Make(true, 5, 7);
  ObjectID meta = ObjectID::Make(false, 5, 7);
  EXPECT_TRUE(blob.is_blob());
  EXPECT_FALSE(meta.is_blob());
  EXPECT_EQ(blob.raw() & ObjectID::kBlobBit, ObjectID::kBlobBit);
  EXPECT_EQ(blob.raw() ^ meta.raw(), ObjectID::kBlobBit);
  EXPECT_TRUE(ObjectID::Parse("o8000000000000001")->is_blob());
  EXPECT_FALSE(ObjectID::Parse("o7fff000000000001")->is_blob());
}

TEST(ObjectID, InstanceLivesInBits62To48) {
  ObjectID id = ObjectID::Make(false, 2, 9);
  EXPECT_EQ(id.instance(), 2u);
  EXPECT_EQ(id.raw() >> 48, 2u);
  EXPECT_EQ(ObjectID::Make(true, kMaxInstance, 1).instance(), kMaxInstance);
  // The instance never leaks into the blob bit.
  EXPECT_FALSE(ObjectID::Make(false, kMaxInstance, 1).is_blob());
  EXPECT_EQ(ObjectID::Parse("o0002000000000003")->instance(), 2u);
  EXPECT_EQ(ObjectID::Parse("o8002000000000003")->instance(), 2u);
}

TEST(ObjectID, CounterLivesInBits47To0) {
  ObjectID id = ObjectID::Make(true, 3, 0x123456789abcULL);
  EXPECT_EQ(id.counter(), 0x123456789abcULL);
  EXPECT_EQ(id.instance(), 3u);
  // A counter wider than 48 bits does not spill into the instance.
  ObjectID wide = ObjectID::Make(false, 1, (uint64_t{1} << 48) | 5);
  EXPECT_EQ(wide.counter(), 5u);
  EXPECT_EQ(wide.instance(), 1u);
}

TEST(ObjectID, ParseRejectsMalformedIds) {
  const std::vector<std::string> bad = {
      "",                    // empty
      "o",                   // no digits
      "o800100000000002",    // 15 digits
      "o80010000000000020",  // 17 digits
      "o8001000000000002 ",  // trailing space
      "O8001000000000002",   // capital O
      "o8001000000000ABC",   // uppercase hex
      "x8001000000000002",   // no 'o'
      "08001000000000002",   // no 'o', right length
      "o800100000000000g",   // non-hex
      "o80010000-0000002",   // non-hex
      "o0000000000000000",   // all zero: reserved
  };
  for (const auto& text : bad) {
    auto r = ObjectID::Parse(text);
    EXPECT_FALSE(r.ok()) << "accepted '" << text << "'";
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << text;
    }
  }
}

TEST(ObjectID, DefaultIsInvalid) {
  EXPECT_FALSE(ObjectID().valid());
  EXPECT_TRUE(ObjectID(1).valid());
}

// A SaveLimit that records every call.
struct SaveLog {
  std::vector<uint64_t> limits;
  IdAllocator::SaveLimit fn() {
    return [this](uint64_t limit) {
      limits.push_back(limit);
      return Status::OK();
    };
  }
};

TEST(IdAllocator, HandsOutUniqueIncreasingIds) {
  SaveLog log;
  IdAllocator ids(7, 0, log.fn());
  ObjectID prev;
  std::set<ObjectID> seen;
  for (int i = 0; i < 10000; ++i) {
    auto id = ids.Next(i % 3 == 0);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    EXPECT_TRUE(id->valid());
    EXPECT_EQ(id->instance(), 7u);
    EXPECT_EQ(id->is_blob(), i % 3 == 0);
    if (i > 0) {
      EXPECT_GT(id->counter(), prev.counter());
    }
    EXPECT_TRUE(seen.insert(*id).second) << "duplicate " << id->ToString();
    prev = *id;
  }
}

TEST(IdAllocator, SavesTheLimitOncePerBlock) {
  SaveLog log;
  IdAllocator ids(1, 0, log.fn());
  // The first id already needs a saved block.
  ASSERT_TRUE(ids.Next(false).ok());
  ASSERT_EQ(log.limits.size(), 1u);
  uint64_t n = 1;
  for (; n < IdAllocator::kBlock; ++n) ASSERT_TRUE(ids.Next(false).ok());
  EXPECT_EQ(log.limits.size(), 1u) << "saved more than once within one block";
  ASSERT_TRUE(ids.Next(false).ok());  // id number kBlock + 1 opens a second block
  ++n;
  EXPECT_EQ(log.limits.size(), 2u);
  for (; n < 3 * IdAllocator::kBlock; ++n) ASSERT_TRUE(ids.Next(true).ok());
  EXPECT_EQ(log.limits.size(), 3u);
  for (size_t i = 1; i < log.limits.size(); ++i) {
    EXPECT_EQ(log.limits[i] - log.limits[i - 1], IdAllocator::kBlock);
  }
}

TEST(IdAllocator, EveryIdHandedOutIsBelowTheSavedLimit) {
  SaveLog log;
  IdAllocator ids(1, 0, log.fn());
  for (int i = 0; i < 5000; ++i) {
    auto id = ids.Next(false);
    ASSERT_TRUE(id.ok());
    ASSERT_FALSE(log.limits.empty());
    EXPECT_LT(id->counter(), log.limits.back());
  }
}

TEST(IdAllocator, RestartFromSavedLimitNeverReusesAnId) {
  for (uint64_t n : {uint64_t{1}, uint64_t{100}, IdAllocator::kBlock - 1, IdAllocator::kBlock,
                     IdAllocator::kBlock + 1, 2 * IdAllocator::kBlock + 17}) {
    SaveLog log;
    std::set<uint64_t> before;
    {
      IdAllocator ids(3, 0, log.fn());
      for (uint64_t i = 0; i < n; ++i) before.insert(ids.Next(i % 2)->raw() & ~ObjectID::kBlobBit);
    }
    // "Crash": whatever was not saved is gone; restart from the last saved limit.
    ASSERT_FALSE(log.limits.empty());
    SaveLog log2;
    IdAllocator again(3, log.limits.back(), log2.fn());
    for (uint64_t i = 0; i < n + 10; ++i) {
      auto id = again.Next(i % 2);
      ASSERT_TRUE(id.ok());
      EXPECT_EQ(before.count(id->raw() & ~ObjectID::kBlobBit), 0u)
          << "reused " << id->ToString() << " after " << n << " ids";
    }
    ASSERT_FALSE(log2.limits.empty());
    EXPECT_GT(log2.limits.front(), log.limits.back());
  }
}

TEST(IdAllocator, SaveFailurePropagatesAndHandsOutNothing) {
  int calls = 0;
  IdAllocator ids(1, 0, [&](uint64_t) {
    ++calls;
    return Status::IOError("disk on fire");
  });
  auto id = ids.Next(false);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), Status::Code::kIOError);
  EXPECT_NE(id.status().message().find("disk on fire"), std::string::npos);
  // It keeps refusing (and keeps trying to save) rather than handing out unsaved ids.
  EXPECT_FALSE(ids.Next(true).ok());
  EXPECT_EQ(calls, 2);
}

TEST(IdAllocator, RecoversWhenSaveStartsWorkingAgain) {
  bool fail = true;
  std::vector<uint64_t> saved;
  IdAllocator ids(1, 0, [&](uint64_t limit) {
    if (fail) return Status::IOError("transient");
    saved.push_back(limit);
    return Status::OK();
  });
  ASSERT_FALSE(ids.Next(false).ok());
  fail = false;
  auto id = ids.Next(false);
  ASSERT_TRUE(id.ok());
  ASSERT_EQ(saved.size(), 1u);
  EXPECT_LT(id->counter(), saved[0]);
}

TEST(IdAllocator, RefusesWhenTheCounterIsExhausted) {
  IdAllocator ids(1, ObjectID::kCounterMask - 10, [](uint64_t) { return Status::OK(); });
  auto id = ids.Next(false);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), Status::Code::kNoSpace);
}

}  // namespace
}  // namespace vineyard
