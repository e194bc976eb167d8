// Tests meta/object_table.cc's load after a restart, failed commits and remote members
// over an in-memory Journal.
#include "meta/object_table.h"

#include "object_table_fixture.h"

namespace vineyard {
namespace {

TEST_F(ObjectTableTest, LoadAfterRestartRecoversObjectsNamesAndRefcounts) {
  ObjectID a = Blob(100), b = Blob(200);
  ObjectID inner = Make({{"b", b}});
  ObjectID o = Make({{"a", a}, {"inner", inner}}, R"(,"note":"x")");
  ObjectID shared_user = Make({{"a", a}});
  ASSERT_TRUE(table_->Persist(inner, kOwner).ok());
  ASSERT_TRUE(table_->PutName("top", o, Owner{3, 4}, false).ok());
  ASSERT_TRUE(table_->PutName("blob", b, kOwner, false).ok());
  std::map<ObjectID, ObjectRecord> before;
  for (ObjectID id : AllObjects()) before[id] = *table_->Get(id);
  auto counts_before = table_->counts();
  auto names_before = table_->ListNames("", 100);
  auto meta_before = *table_->RenderMeta(o);

  Reopen();
  EXPECT_TRUE(warnings_.empty()) << warnings_[0];
  auto ids = AllObjects();
  ASSERT_EQ(ids.size(), before.size());
  for (ObjectID id : ids) {
    ASSERT_TRUE(before.count(id)) << id.ToString();
    auto r = *table_->Get(id);
    const auto& w = before[id];
    EXPECT_EQ(r.type_name, w.type_name);
    EXPECT_EQ(r.nbytes, w.nbytes);
    EXPECT_EQ(r.size, w.size);
    EXPECT_EQ(r.transient, w.transient) << id.ToString();
    EXPECT_EQ(r.global, w.global);
    EXPECT_EQ(r.signature, w.signature);
    EXPECT_EQ(r.timestamp_ms, w.timestamp_ms);
    EXPECT_EQ(r.members, w.members);
    EXPECT_EQ(r.fields, w.fields);
    EXPECT_EQ(r.referrers, w.referrers) << id.ToString();
  }
  EXPECT_EQ(Referrers(a), 2u);
  auto c = table_->counts();
  EXPECT_EQ(c.objects, counts_before.objects);
  EXPECT_EQ(c.blobs, counts_before.blobs);
  EXPECT_EQ(c.blob_bytes, counts_before.blob_bytes);
  EXPECT_EQ(c.persisted, counts_before.persisted);
  EXPECT_EQ(c.names, counts_before.names);
  auto names = table_->ListNames("", 100);
  ASSERT_EQ(names.size(), names_before.size());
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(names[i].first, names_before[i].first);
    EXPECT_EQ(names[i].second.id, names_before[i].second.id);
    EXPECT_EQ(names[i].second.owner.uid, names_before[i].second.owner.uid);
  }
  EXPECT_EQ(*table_->RenderMeta(o), meta_before);
  // Refcounts survived: a member is still busy, and a fresh id is really fresh.
  EXPECT_EQ(table_->Delete(a).status().code(), Status::Code::kBusy);
  for (int i = 0; i < 100; ++i) {
    ObjectID fresh = Blob(1);
    EXPECT_FALSE(before.count(fresh)) << "reused " << fresh.ToString();
    EXPECT_GT(fresh.counter(), o.counter());
    EXPECT_GT(fresh.counter(), shared_user.counter());
  }
}

TEST_F(ObjectTableTest, FreshIdsAfterRestartNeverCollideEvenWithoutAnyObjects) {
  std::set<uint64_t> counters;
  for (int i = 0; i < 10; ++i) counters.insert(table_->NewId(i % 2)->counter());
  Reopen();
  for (int i = 0; i < 10; ++i) {
    auto id = table_->NewId(i % 2);
    ASSERT_TRUE(id.ok());
    EXPECT_EQ(counters.count(id->counter()), 0u) << id->ToString();
  }
  EXPECT_GT(journal_.id_limit(), 0u);
}

TEST_F(ObjectTableTest, LoadReportsBadRecordsDanglingMembersAndNamesButKeepsTheRest) {
  ObjectID a = Blob(10);
  ObjectID o = Make({{"a", a}});
  ObjectID ghost = ObjectID::Make(true, 1, 999);
  journal_.TestPutRaw(ObjectID::Make(false, 1, 998), "{not json");
  ObjectRecord dangling;
  dangling.id = ObjectID::Make(false, 1, 997);
  dangling.type_name = "t";
  dangling.instance = 1;
  dangling.members = {{"g", ghost}};
  dangling.fields = R"({"g":{"id":")" + ghost.ToString() + R"("}})";
  journal_.TestPutRecord(dangling);
  journal_.TestPutName("lost", NameRecord{ghost, kOwner, 1});
  Reopen();
  EXPECT_EQ(warnings_.size(), 3u);
  EXPECT_TRUE(table_->Exists(a));
  EXPECT_TRUE(table_->Exists(o));
  EXPECT_TRUE(table_->Exists(dangling.id));
  EXPECT_FALSE(table_->Exists(ObjectID::Make(false, 1, 998)));
  EXPECT_FALSE(table_->GetName("lost").has_value());
  EXPECT_EQ(Referrers(a), 1u);
}

TEST_F(ObjectTableTest, FailedCommitOfAddBlobLeavesMemoryUnchanged) {
  auto id = table_->NewId(true);
  ASSERT_TRUE(id.ok());
  journal_.TestFailNextCommit();
  auto r = table_->AddBlob(*id, 100, kOwner);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kIOError);
  EXPECT_FALSE(table_->Exists(*id));
  EXPECT_EQ(table_->counts().objects, 0u);
  EXPECT_EQ(table_->counts().blob_bytes, 0u);
  // The same id can be added once the journal works again.
  EXPECT_TRUE(table_->AddBlob(*id, 100, kOwner).ok());
}

TEST_F(ObjectTableTest, FailedCommitOfCreateLeavesMemoryUnchanged) {
  ObjectID a = Blob(10);
  auto objects_before = AllObjects();
  journal_.TestFailNextCommit();
  auto r = CreateJson(R"({"typename":"t","transient":false,"a":{"id":")" + a.ToString() + "\"}}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kIOError);
  EXPECT_EQ(AllObjects(), objects_before);
  EXPECT_EQ(Referrers(a), 0u);
  EXPECT_TRUE(table_->Get(a)->transient) << "the member must not be persisted either";
  EXPECT_EQ(table_->counts().objects, 1u);
  EXPECT_EQ(table_->counts().persisted, 0u);
  EXPECT_TRUE(table_->Delete(a).ok());
}

TEST_F(ObjectTableTest, FailedCommitOfPersistLeavesMemoryUnchanged) {
  ObjectID a = Blob(10);
  ObjectID o = Make({{"a", a}});
  journal_.TestFailNextCommit();
  std::vector<ObjectID> changed;
  EXPECT_EQ(table_->Persist(o, kOwner, &changed).code(), Status::Code::kIOError);
  EXPECT_TRUE(changed.empty());
  EXPECT_TRUE(table_->Get(o)->transient);
  EXPECT_TRUE(table_->Get(a)->transient);
  EXPECT_EQ(table_->counts().persisted, 0u);
}

TEST_F(ObjectTableTest, FailedCommitOfDeleteLeavesMemoryUnchanged) {
  ObjectID a = Blob(10);
  ObjectID o = Make({{"a", a}});
  ASSERT_TRUE(table_->PutName("n", o, kOwner, false).ok());
  journal_.TestFailNextCommit();
  auto d = table_->Delete(o);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), Status::Code::kIOError);
  EXPECT_TRUE(table_->Exists(o));
  EXPECT_TRUE(table_->Exists(a));
  EXPECT_EQ(Referrers(a), 1u);
  EXPECT_TRUE(table_->GetName("n").has_value());
  EXPECT_EQ(table_->counts().objects, 2u);
}

TEST_F(ObjectTableTest, FailedCommitOfNameChangesLeavesMemoryUnchanged) {
  ObjectID o = Make({});
  ASSERT_TRUE(table_->PutName("a", o, kOwner, false).ok());
  journal_.TestFailNextCommit();
  EXPECT_FALSE(table_->PutName("b", o, kOwner, false).ok());
  EXPECT_FALSE(table_->GetName("b").has_value());
  journal_.TestFailNextCommit();
  EXPECT_FALSE(table_->DropName("a").ok());
  EXPECT_TRUE(table_->GetName("a").has_value());
  journal_.TestFailNextCommit();
  EXPECT_FALSE(table_->RenameName("a", "c").ok());
  EXPECT_TRUE(table_->GetName("a").has_value());
  EXPECT_FALSE(table_->GetName("c").has_value());
  EXPECT_EQ(table_->counts().names, 1u);
}

TEST_F(ObjectTableTest, DropLostForgetsObjectsAndTheirNames) {
  ObjectID a = Blob(10), b = Blob(20);
  ASSERT_TRUE(table_->PutName("a", a, kOwner, false).ok());
  ASSERT_TRUE(table_->DropLost({a}).ok());
  EXPECT_FALSE(table_->Exists(a));
  EXPECT_FALSE(journal_.HasObject(a));
  EXPECT_FALSE(table_->GetName("a").has_value());
  EXPECT_TRUE(table_->Exists(b));
  EXPECT_EQ(table_->counts().blobs, 1u);
  EXPECT_EQ(table_->counts().blob_bytes, 20u);
}

// Records of instance 2, as replication would have journaled them.
class RemoteMemberTest : public ObjectTableTest {
 protected:
  void SetUp() override {
    remote_transient_ = RemoteBlob(1, /*transient=*/true);
    remote_persisted_ = RemoteBlob(2, /*transient=*/false);
    Reopen();
  }
  ObjectID RemoteBlob(uint64_t counter, bool transient) {
    ObjectRecord r;
    r.id = ObjectID::Make(true, 2, counter);
    r.type_name = kBlobTypename;
    r.size = r.nbytes = 64;
    r.instance = 2;
    r.transient = transient;
    r.timestamp_ms = 1;
    journal_.TestPutRecord(r);
    return r.id;
  }
  ObjectID remote_transient_, remote_persisted_;
};

TEST_F(RemoteMemberTest, LoadSeesRemoteRecords) {
  ASSERT_TRUE(table_->Exists(remote_persisted_));
  EXPECT_EQ(table_->Get(remote_persisted_)->instance, 2u);
  EXPECT_FALSE(table_->Get(remote_persisted_)->transient);
}

TEST_F(RemoteMemberTest, NonGlobalObjectRefusesRemoteMember) {
  auto r = CreateJson(R"({"typename":"t","m":{"id":")" + remote_persisted_.ToString() + "\"}}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(Referrers(remote_persisted_), 0u);
  EXPECT_EQ(table_->counts().objects, 2u);
}

TEST_F(RemoteMemberTest, GlobalObjectRefusesTransientRemoteMember) {
  auto r = CreateJson(R"({"typename":"t","global":true,"m":{"id":")" +
                      remote_transient_.ToString() + "\"}}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(Referrers(remote_transient_), 0u);
}

TEST_F(RemoteMemberTest, GlobalObjectAcceptsPersistedRemoteMember) {
  ObjectID local = Blob(8);
  auto r =
      CreateJson(R"({"typename":"t","global":true,"m":{"id":")" + remote_persisted_.ToString() +
                 R"("},"l":{"id":")" + local.ToString() + "\"}}");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->global);
  EXPECT_FALSE(r->transient);
  EXPECT_EQ(r->nbytes, 72u);
  EXPECT_EQ(Referrers(remote_persisted_), 1u);
  EXPECT_FALSE(table_->Get(local)->transient) << "a global object persists its local members";
}

// A field {"id": 5} is refused by the create form; a journal (or peer) record holding
// one is refused the same way when loaded, without throwing.
TEST_F(ObjectTableTest, LoadRefusesARecordWhoseMemberIdIsNotAString) {
  ObjectRecord r;
  r.id = ObjectID::Make(false, 1, 500);
  r.type_name = "t";
  r.instance = 1;
  r.fields = R"({"x":{"id":5}})";
  journal_.TestPutRecord(r);
  EXPECT_NO_THROW(Reopen());
  EXPECT_FALSE(table_->Exists(r.id));
}

}  // namespace
}  // namespace vineyard
