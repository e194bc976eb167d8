// Tests meta/typename.h: longest-prefix typename matching for resolver plugins.
#include "meta/typename.h"

#include <gtest/gtest.h>

#include <string>

namespace vineyard {
namespace {

class PrefixMatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    m_.Add("vineyard::", "any");
    m_.Add("vineyard::NumericArray", "numeric");
    m_.Add("vineyard::NumericArray<int64>", "exact");
    m_.Add("vineyard::Tensor", "tensor");
  }
  static std::string Of(const std::string* v) { return v ? *v : "<none>"; }
  PrefixMatcher<std::string> m_;
};

TEST_F(PrefixMatcherTest, ExactRegistrationWins) {
  EXPECT_EQ(Of(m_.Match("vineyard::NumericArray<int64>")), "exact");
}

TEST_F(PrefixMatcherTest, LongestPrefixWins) {
  EXPECT_EQ(Of(m_.Match("vineyard::NumericArray<double>")), "numeric");
  EXPECT_EQ(Of(m_.Match("vineyard::NumericArray")), "numeric");
  EXPECT_EQ(Of(m_.Match("vineyard::NumericArray<int64>Extra")), "exact");
  EXPECT_EQ(Of(m_.Match("vineyard::DataFrame")), "any");
  EXPECT_EQ(Of(m_.Match("vineyard::Tensor<double>")), "tensor");
}

TEST_F(PrefixMatcherTest, NoMatchGivesNull) {
  EXPECT_EQ(m_.Match("arrow::Table"), nullptr);
  EXPECT_EQ(m_.Match(""), nullptr);
  EXPECT_EQ(m_.Match("vineyard:"), nullptr);         // shorter than every registration
  EXPECT_EQ(m_.Match("Vineyard::Tensor"), nullptr);  // case matters
}

TEST_F(PrefixMatcherTest, EmptyPrefixMatchesEverythingAsALastResort) {
  m_.Add("", "fallback");
  EXPECT_EQ(Of(m_.Match("arrow::Table")), "fallback");
  EXPECT_EQ(Of(m_.Match("vineyard::Tensor")), "tensor");
}

TEST_F(PrefixMatcherTest, MatchAllListsLongestPrefixFirst) {
  auto all = m_.MatchAll("vineyard::NumericArray<int64>");
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(*all[0], "exact");
  EXPECT_EQ(*all[1], "numeric");
  EXPECT_EQ(*all[2], "any");

  auto two = m_.MatchAll("vineyard::NumericArray<float>");
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(*two[0], "numeric");
  EXPECT_EQ(*two[1], "any");

  EXPECT_TRUE(m_.MatchAll("arrow::Table").empty());
}

TEST_F(PrefixMatcherTest, AddReplacesTheValueForTheSamePrefix) {
  m_.Add("vineyard::Tensor", "tensor2");
  EXPECT_EQ(m_.size(), 4u);
  EXPECT_EQ(Of(m_.Match("vineyard::Tensor<int>")), "tensor2");
}

TEST_F(PrefixMatcherTest, RemoveFallsBackToTheNextLongestPrefix) {
  EXPECT_EQ(m_.size(), 4u);
  EXPECT_TRUE(m_.Remove("vineyard::NumericArray"));
  EXPECT_EQ(m_.size(), 3u);
  EXPECT_EQ(Of(m_.Match("vineyard::NumericArray<double>")), "any");
  EXPECT_EQ(Of(m_.Match("vineyard::NumericArray<int64>")), "exact");
  EXPECT_TRUE(m_.Remove("vineyard::"));
  EXPECT_EQ(m_.Match("vineyard::NumericArray<double>"), nullptr);
}

TEST_F(PrefixMatcherTest, RemoveOfUnknownPrefixReportsFalse) {
  EXPECT_FALSE(m_.Remove("vineyard::Nope"));
  EXPECT_FALSE(m_.Remove("vineyard"));  // a prefix of a registration is not one
  EXPECT_EQ(m_.size(), 4u);
}

}  // namespace
}  // namespace vineyard
