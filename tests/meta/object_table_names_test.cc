// Tests meta/object_table.cc's names (put, get, drop, rename) over an in-memory Journal.
#include "meta/object_table.h"

#include "object_table_fixture.h"

namespace vineyard {
namespace {

TEST_F(ObjectTableTest, PutNameAndGetName) {
  ObjectID o = Make({});
  ASSERT_TRUE(table_->PutName("foo", o, Owner{7, 8}, false).ok());
  auto n = table_->GetName("foo");
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->id, o);
  EXPECT_EQ(n->owner.uid, 7u);
  EXPECT_EQ(n->owner.gid, 8u);
  EXPECT_GT(n->timestamp_ms, 0);
  EXPECT_TRUE(journal_.HasName("foo"));
  EXPECT_FALSE(table_->GetName("bar").has_value());
}

TEST_F(ObjectTableTest, PutNameExistingIsAlreadyExistsUnlessReplace) {
  ObjectID o1 = Make({}), o2 = Make({});
  ASSERT_TRUE(table_->PutName("foo", o1, kOwner, false).ok());
  Status s = table_->PutName("foo", o2, kOwner, false);
  EXPECT_EQ(s.code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(table_->GetName("foo")->id, o1);
  ASSERT_TRUE(table_->PutName("foo", o2, kOwner, true).ok());
  EXPECT_EQ(table_->GetName("foo")->id, o2);
  EXPECT_EQ(table_->counts().names, 1u);
}

TEST_F(ObjectTableTest, PutNameOfUnknownObjectIsNotFound) {
  Status s = table_->PutName("foo", ObjectID::Make(false, 1, 31337), kOwner, false);
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_FALSE(table_->GetName("foo").has_value());
  EXPECT_FALSE(journal_.HasName("foo"));
}

TEST_F(ObjectTableTest, PutNameRefusesInvalidNames) {
  ObjectID o = Make({});
  for (const std::string& name : {std::string(""), std::string("."), std::string(".."),
                                  std::string("a/b"), std::string(256, 'x')}) {
    EXPECT_EQ(table_->PutName(name, o, kOwner, false).code(), Status::Code::kInvalidArgument)
        << "'" << name << "'";
  }
  EXPECT_EQ(table_->counts().names, 0u);
  EXPECT_EQ(journal_.name_count(), 0u);
}

TEST_F(ObjectTableTest, DropName) {
  ObjectID o = Make({});
  ASSERT_TRUE(table_->PutName("foo", o, kOwner, false).ok());
  ASSERT_TRUE(table_->DropName("foo").ok());
  EXPECT_FALSE(table_->GetName("foo").has_value());
  EXPECT_FALSE(journal_.HasName("foo"));
  EXPECT_TRUE(table_->Exists(o)) << "dropping a name never deletes the object";
  EXPECT_EQ(table_->DropName("foo").code(), Status::Code::kNotFound);
}

TEST_F(ObjectTableTest, RenameName) {
  ObjectID o = Make({});
  ASSERT_TRUE(table_->PutName("a", o, Owner{5, 6}, false).ok());
  ASSERT_TRUE(table_->RenameName("a", "b").ok());
  EXPECT_FALSE(table_->GetName("a").has_value());
  ASSERT_TRUE(table_->GetName("b").has_value());
  EXPECT_EQ(table_->GetName("b")->id, o);
  EXPECT_EQ(table_->GetName("b")->owner.uid, 5u);
  EXPECT_FALSE(journal_.HasName("a"));
  EXPECT_TRUE(journal_.HasName("b"));
  // Renaming onto itself is a no-op.
  ASSERT_TRUE(table_->RenameName("b", "b").ok());
  EXPECT_TRUE(table_->GetName("b").has_value());
}

TEST_F(ObjectTableTest, RenameNameReplacesTheTarget) {
  ObjectID o1 = Make({}), o2 = Make({});
  ASSERT_TRUE(table_->PutName("from", o1, kOwner, false).ok());
  ASSERT_TRUE(table_->PutName("to", o2, kOwner, false).ok());
  ASSERT_TRUE(table_->RenameName("from", "to").ok());
  EXPECT_EQ(table_->GetName("to")->id, o1);
  EXPECT_FALSE(table_->GetName("from").has_value());
  EXPECT_EQ(table_->counts().names, 1u);
  EXPECT_TRUE(table_->Exists(o2));
}

TEST_F(ObjectTableTest, RenameNameErrors) {
  ObjectID o = Make({});
  ASSERT_TRUE(table_->PutName("a", o, kOwner, false).ok());
  EXPECT_EQ(table_->RenameName("missing", "x").code(), Status::Code::kNotFound);
  EXPECT_FALSE(table_->GetName("x").has_value());
  EXPECT_EQ(table_->RenameName("a", "x/y").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(table_->RenameName("a", "").code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(table_->GetName("a").has_value());
}

}  // namespace
}  // namespace vineyard
