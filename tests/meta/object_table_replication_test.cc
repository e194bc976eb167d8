// Tests meta/object_table.cc's replication: what the table publishes and what it accepts.
#include "meta/object_table.h"

#include "object_table_fixture.h"

namespace vineyard {
namespace {

// ---- Replication: what the table publishes and what it accepts ----

class ReplicationTest : public ObjectTableTest {
 protected:
  void SetUp() override {
    ObjectTableTest::SetUp();
    Sink(table_.get(), &published_);
  }
  static void Sink(ObjectTable* t, std::vector<wire::Change>* out) {
    t->SetChangeSink(
        [out](std::vector<wire::Change>&& c) { out->insert(out->end(), c.begin(), c.end()); });
  }
  // A persisted record of `origin`, encoded as a peer would publish it.
  static wire::Change RemotePut(InstanceId origin, uint64_t seq, bool blob, uint64_t counter,
                                const std::string& fields = "", bool transient = false) {
    ObjectRecord r;
    r.id = ObjectID::Make(blob, origin, counter);
    r.type_name = blob ? kBlobTypename : "test::Remote";
    r.size = r.nbytes = blob ? 16 : 0;
    r.instance = origin;
    r.transient = transient;
    r.timestamp_ms = 1000 + static_cast<int64_t>(counter);
    r.signature = MakeSignature(r.id, r.timestamp_ms);
    r.fields = fields;
    wire::Change c;
    c.origin = origin;
    c.seq = seq;
    c.op = wire::Op::kObjectPut;
    c.id = r.id;
    c.record = EncodeRecord(r);
    return c;
  }
  static wire::Change RemoteName(InstanceId origin, const std::string& name, ObjectID id,
                                 int64_t ts_ms, bool drop = false) {
    wire::Change c;
    c.origin = origin;
    c.writer = origin;
    c.op = drop ? wire::Op::kNameDrop : wire::Op::kNamePut;
    c.name = name;
    c.id = id;
    c.timestamp = static_cast<uint64_t>(ts_ms) * 1000000;
    return c;
  }
  std::vector<wire::Change> published_;
};

TEST_F(ReplicationTest, OnlyPersistedObjectsAndTheirNamesArePublishedInOrder) {
  ObjectID transient = Blob(4);
  ASSERT_TRUE(table_->PutName("t", transient, kOwner, false).ok());
  EXPECT_TRUE(published_.empty()) << "transient objects and their names stay local";
  ObjectID blob = Blob(8);
  auto holder =
      CreateJson(R"({"typename":"x","transient":false,"m":{"id":")" + blob.ToString() + "\"}}");
  ASSERT_TRUE(holder.ok());
  ASSERT_EQ(published_.size(), 2u);
  EXPECT_EQ(published_[0].id, blob) << "members go first";
  EXPECT_EQ(published_[1].id, holder->id);
  EXPECT_EQ(published_[0].seq + 1, published_[1].seq);
  EXPECT_EQ(published_[0].origin, 1u);
  auto rec = DecodeRecord(published_[0].record);
  ASSERT_TRUE(rec.ok());
  EXPECT_FALSE(rec->transient);
  // Persisting the transient blob publishes it and the name put on it earlier.
  ASSERT_TRUE(table_->Persist(transient, kOwner).ok());
  ASSERT_EQ(published_.size(), 4u);
  EXPECT_EQ(published_[2].op, wire::Op::kObjectPut);
  EXPECT_EQ(published_[3].op, wire::Op::kNamePut);
  EXPECT_EQ(published_[3].name, "t");
  // Deleting publishes the name drop and the deletes.
  ASSERT_TRUE(table_->Delete(transient).ok());
  ASSERT_EQ(published_.size(), 6u);
  EXPECT_EQ(published_[4].op, wire::Op::kNameDrop);
  EXPECT_EQ(published_[5].op, wire::Op::kObjectDelete);
  for (size_t i = 1; i < published_.size(); ++i) {
    EXPECT_EQ(published_[i].seq, published_[i - 1].seq + 1);
  }
  EXPECT_EQ(table_->published_seq(), published_.back().seq);
}

TEST_F(ReplicationTest, SequenceNumbersSurviveARestart) {
  ObjectID b = Blob(1);
  ASSERT_TRUE(table_->Persist(b, kOwner).ok());
  uint64_t seq = table_->published_seq();
  ASSERT_GT(seq, 0u);
  Reopen();
  EXPECT_EQ(table_->published_seq(), seq);
}

TEST_F(ReplicationTest, RemoteRecordsApplyAndAreJournaled) {
  auto blob = RemotePut(2, 1, true, 1);
  auto holder = RemotePut(2, 2, false, 2, R"({"m":{"id":")" + blob.id.ToString() + "\"}}");
  auto a = table_->ApplyRemote({blob, holder});
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->rejected.empty());
  EXPECT_EQ(a->objects.size(), 2u);
  EXPECT_TRUE(journal_.HasObject(blob.id));
  EXPECT_EQ(table_->counts().remote, 2u);
  EXPECT_EQ(Referrers(blob.id), 1u);
  EXPECT_TRUE(published_.empty()) << "a node does not republish what it received";
  Reopen();
  EXPECT_TRUE(table_->Exists(holder.id));
  EXPECT_EQ(Referrers(blob.id), 1u);
  EXPECT_EQ(table_->counts().remote, 2u);
}

TEST_F(ReplicationTest, HostileChangesAreRefusedAndTheRestApplies) {
  auto forged = RemotePut(3, 1, true, 7);
  forged.origin = 2;  // instance 2 speaking for an object made by 3
  auto transient = RemotePut(2, 2, true, 8, "", /*transient=*/true);
  auto garbage = RemotePut(2, 3, true, 9);
  garbage.record = "{not json";
  auto mine = RemotePut(1, 4, true, 10);  // this node's own id from a peer
  auto foreign_name = RemoteName(2, "n", ObjectID::Make(true, 2, 1), 5);
  foreign_name.writer = 3;
  auto good = RemotePut(2, 5, true, 11);
  auto a = table_->ApplyRemote({forged, transient, garbage, mine, foreign_name, good});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->rejected.size(), 5u);
  EXPECT_EQ(AllObjects(), std::vector<ObjectID>{good.id});
  EXPECT_FALSE(table_->GetName("n").has_value());
}

TEST_F(ReplicationTest, RemoteDeleteDropsTheObjectAndNamesOnIt) {
  auto blob = RemotePut(2, 1, true, 1);
  ASSERT_TRUE(table_->ApplyRemote({blob, RemoteName(2, "r", blob.id, 10)}).ok());
  ASSERT_TRUE(table_->GetName("r").has_value());
  EXPECT_EQ(table_->Delete(blob.id).status().code(), Status::Code::kRemote)
      << "only the creating node may delete";
  wire::Change del;
  del.origin = 2;
  del.seq = 3;
  del.op = wire::Op::kObjectDelete;
  del.id = blob.id;
  auto a = table_->ApplyRemote({del});
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(table_->Exists(blob.id));
  EXPECT_FALSE(table_->GetName("r").has_value());
  EXPECT_FALSE(journal_.HasObject(blob.id));
}

TEST_F(ReplicationTest, NamesAreLastWriterWinsWhateverTheArrivalOrder) {
  auto x = RemotePut(2, 1, true, 1), y = RemotePut(3, 1, true, 1);
  ASSERT_TRUE(table_->ApplyRemote({x, y}).ok());
  // 3's put is newer; it arrives first, 2's older put must not override it.
  ASSERT_TRUE(table_->ApplyRemote({RemoteName(3, "n", y.id, 200)}).ok());
  ASSERT_TRUE(table_->ApplyRemote({RemoteName(2, "n", x.id, 100)}).ok());
  EXPECT_EQ(table_->GetName("n")->id, y.id);
  // Equal timestamps: the higher instance wins.
  ASSERT_TRUE(table_->ApplyRemote({RemoteName(2, "n", x.id, 200)}).ok());
  EXPECT_EQ(table_->GetName("n")->id, y.id);
  // A drop at 300 wins over a put at 250 that arrives after it (the tombstone).
  ASSERT_TRUE(table_->ApplyRemote({RemoteName(2, "n", x.id, 300, /*drop=*/true)}).ok());
  ASSERT_TRUE(table_->ApplyRemote({RemoteName(3, "n", y.id, 250)}).ok());
  EXPECT_FALSE(table_->GetName("n").has_value());
  // A local put after all of it wins, even with a clock behind the others'.
  ASSERT_TRUE(table_->PutName("n", x.id, kOwner, false).ok());
  ASSERT_FALSE(published_.empty());
  EXPECT_GT(published_.back().timestamp, uint64_t{300} * 1000000);
  EXPECT_EQ(published_.back().writer, 1u);
}

TEST_F(ReplicationTest, SnapshotReplacesWhatTheOriginSpeaksFor) {
  auto keep = RemotePut(2, 1, true, 1), gone = RemotePut(2, 2, true, 2);
  auto other = RemotePut(3, 1, true, 1);
  ASSERT_TRUE(table_
                  ->ApplyRemote({keep, gone, other, RemoteName(2, "old", gone.id, 10),
                                 RemoteName(3, "kept", keep.id, 10)})
                  .ok());
  ObjectID local = Blob(3);
  auto fresh = RemotePut(2, 5, true, 3);
  fresh.seq = keep.seq = 9;
  auto a = table_->ApplySnapshot(2, {keep, fresh, RemoteName(2, "new", fresh.id, 20)});
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->rejected.empty());
  EXPECT_TRUE(table_->Exists(keep.id));
  EXPECT_TRUE(table_->Exists(fresh.id));
  EXPECT_FALSE(table_->Exists(gone.id)) << "no longer in the origin's snapshot";
  EXPECT_FALSE(table_->GetName("old").has_value());
  EXPECT_TRUE(table_->GetName("new").has_value());
  EXPECT_TRUE(table_->Exists(other.id)) << "another origin's objects are not touched";
  EXPECT_TRUE(table_->GetName("kept").has_value()) << "a name written by another origin stays";
  EXPECT_TRUE(table_->Exists(local));
  EXPECT_FALSE(table_->ApplySnapshot(1, {}).ok()) << "a snapshot of this node itself";
}

TEST_F(ReplicationTest, ASnapshotRebuildsTheSameTablesElsewhere) {
  ObjectID b1 = Blob(10), b2 = Blob(20);
  auto pair = CreateJson(R"({"typename":"vineyard::Pair","transient":false,"first_":{"id":")" +
                         b1.ToString() + R"("},"second_":{"id":")" + b2.ToString() + "\"}}");
  ASSERT_TRUE(pair.ok());
  ASSERT_TRUE(table_->PutName("p", pair->id, kOwner, false).ok());
  ObjectID hidden = Blob(5);  // transient: not in the snapshot
  std::vector<wire::Change> snap;
  uint64_t seq = table_->Snapshot(&snap);
  EXPECT_EQ(seq, table_->published_seq());
  ASSERT_EQ(snap.size(), 4u);
  EXPECT_TRUE(snap[0].id.is_blob() && snap[1].id.is_blob()) << "blobs first";

  MemJournal other_journal;
  ObjectTable other(2, &other_journal);
  std::vector<std::string> warnings;
  ASSERT_TRUE(other.Load(&warnings).ok());
  auto a = other.ApplySnapshot(1, snap);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->rejected.empty());
  EXPECT_EQ(*other.RenderMeta(pair->id), *table_->RenderMeta(pair->id));
  EXPECT_EQ(other.GetName("p")->id, pair->id);
  EXPECT_FALSE(other.Exists(hidden));
  EXPECT_EQ(other.Get(b1)->referrers, 1u);
}

TEST_F(ReplicationTest, DeleteCascadeNeverTakesAnotherNodesMember) {
  auto remote = RemotePut(2, 1, true, 1);
  ASSERT_TRUE(table_->ApplyRemote({remote}).ok());
  ObjectID local = Blob(4);
  auto g = CreateJson(R"({"typename":"g","global":true,"r":{"id":")" + remote.id.ToString() +
                      R"("},"l":{"id":")" + local.ToString() + "\"}}");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  auto d = table_->Delete(g->id);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(table_->Exists(remote.id));
  EXPECT_FALSE(table_->Exists(local));
  EXPECT_EQ(Referrers(remote.id), 0u);
}

std::string MemberFields(const std::vector<ObjectID>& members) {
  std::string f = "{";
  for (size_t i = 0; i < members.size(); ++i) {
    if (i) f += ",";
    f += "\"m" + std::to_string(i) + "\":{\"id\":\"" + members[i].ToString() + "\"}";
  }
  return f + "}";
}

// Issue 14, finding 4: peers could send member cycles.
TEST_F(ReplicationTest, MemberCyclesFromPeersAreRefusedInUpdatesAndSnapshots) {
  const ObjectID a = ObjectID::Make(false, 2, 1), b = ObjectID::Make(false, 2, 2),
                 self = ObjectID::Make(false, 2, 3);
  // a holds b (not there yet: accepted, pending); b holding a would close a -> b -> a.
  auto put_a = RemotePut(2, 1, false, 1, MemberFields({b}));
  auto put_b = RemotePut(2, 2, false, 2, MemberFields({a}));
  auto put_self = RemotePut(2, 3, false, 3, MemberFields({self}));
  auto applied = table_->ApplyRemote({put_a, put_b, put_self});
  ASSERT_TRUE(applied.ok());
  ASSERT_EQ(applied->rejected.size(), 2u);
  EXPECT_NE(applied->rejected[0].find("would hold itself"), std::string::npos);
  EXPECT_TRUE(table_->Exists(a));
  EXPECT_FALSE(table_->Exists(b));
  EXPECT_FALSE(table_->Exists(self));
  // The same records in a snapshot.
  auto snap = table_->ApplySnapshot(2, {put_a, put_b, put_self});
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->rejected.size(), 2u);
  EXPECT_FALSE(table_->Exists(b));
  EXPECT_TRUE(table_->RenderMeta(a).ok());
}

TEST_F(ReplicationTest, RemoteMembersOfAnotherInstanceNeedAGlobalHolder) {
  auto holder = RemotePut(2, 1, false, 1, MemberFields({ObjectID::Make(true, 3, 1)}));
  auto applied = table_->ApplyRemote({holder});
  ASSERT_TRUE(applied.ok());
  ASSERT_EQ(applied->rejected.size(), 1u);
  EXPECT_NE(applied->rejected[0].find("only a global object"), std::string::npos);
}

TEST_F(ReplicationTest, NameTombstonesSurviveARestart) {
  ObjectID x = RemotePut(2, 1, true, 1).id;
  ASSERT_TRUE(table_->ApplyRemote({RemotePut(2, 1, true, 1)}).ok());
  ASSERT_TRUE(table_->ApplyRemote({RemoteName(2, "n", x, 100)}).ok());
  ASSERT_TRUE(table_->GetName("n").has_value());
  ASSERT_TRUE(table_->ApplyRemote({RemoteName(3, "n", x, 200, /*drop=*/true)}).ok());
  ASSERT_FALSE(table_->GetName("n").has_value());
  Reopen();
  // Instance 2, which missed the drop, offers its old put again.
  ASSERT_TRUE(
      table_->ApplySnapshot(2, {RemotePut(2, 1, true, 1), RemoteName(2, "n", x, 100)}).ok());
  EXPECT_FALSE(table_->GetName("n").has_value()) << "the dropped name came back";
  // A later put wins and clears the tombstone, also across a restart.
  ASSERT_TRUE(table_->ApplyRemote({RemoteName(2, "n", x, 300)}).ok());
  Reopen();
  EXPECT_TRUE(table_->GetName("n").has_value());
}

}  // namespace
}  // namespace vineyard
