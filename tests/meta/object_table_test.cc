// Tests meta/object_table.cc over an in-memory Journal: a seam that really keeps
// what is committed (as encoded records, like StateDb) and can be told to fail.
#include "meta/object_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace vineyard {
namespace {

using ojson = nlohmann::ordered_json;

// Keeps the journal in maps of encoded values, as a storage engine would.
class MemJournal : public Journal {
 public:
  Status Commit(const JournalBatch& batch) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++commits_;
    if (fail_next_commit_) {
      fail_next_commit_ = false;
      return Status::IOError("injected commit failure");
    }
    for (const auto& r : batch.put_objects) objects_[r.id] = EncodeRecord(r);
    for (ObjectID id : batch.delete_objects) objects_.erase(id);
    for (const auto& [name, n] : batch.put_names) names_[name] = EncodeName(n);
    for (const auto& name : batch.drop_names) names_.erase(name);
    for (const auto& [name, stamp] : batch.put_tombstones) tombstones_[name] = stamp;
    for (const auto& name : batch.drop_tombstones) tombstones_.erase(name);
    if (batch.seq != 0) seq_ = batch.seq;
    return Status::OK();
  }
  Status SaveIdLimit(uint64_t limit) override {
    std::lock_guard<std::mutex> lock(mu_);
    id_limit_ = limit;
    ++saves_;
    return Status::OK();
  }
  Status Load(Contents* out) override {
    std::lock_guard<std::mutex> lock(mu_);
    out->id_limit = id_limit_;
    out->seq = seq_;
    for (const auto& [id, bytes] : objects_) {
      auto r = DecodeRecord(bytes);
      if (!r.ok()) {
        out->bad.push_back("object " + id.ToString() + ": " + r.status().message());
        continue;
      }
      out->objects.push_back(*r);
    }
    for (const auto& [name, bytes] : names_) {
      auto n = DecodeName(bytes);
      if (!n.ok()) {
        out->bad.push_back("name " + name + ": " + n.status().message());
        continue;
      }
      out->names.emplace_back(name, *n);
    }
    for (const auto& t : tombstones_) out->tombstones.push_back(t);
    return Status::OK();
  }

  // Test hooks.
  void TestFailNextCommit() { fail_next_commit_ = true; }
  void TestPutRaw(ObjectID id, std::string bytes) { objects_[id] = std::move(bytes); }
  void TestPutRecord(const ObjectRecord& r) { objects_[r.id] = EncodeRecord(r); }
  void TestPutName(const std::string& name, const NameRecord& n) { names_[name] = EncodeName(n); }
  bool HasObject(ObjectID id) const { return objects_.count(id) > 0; }
  bool HasName(const std::string& name) const { return names_.count(name) > 0; }
  ObjectRecord Stored(ObjectID id) const { return *DecodeRecord(objects_.at(id)); }
  size_t object_count() const { return objects_.size(); }
  size_t name_count() const { return names_.size(); }
  int commits() const { return commits_; }
  uint64_t id_limit() const { return id_limit_; }

 private:
  std::mutex mu_;
  std::map<ObjectID, std::string> objects_;
  std::map<std::string, std::string> names_;
  std::map<std::string, NameStamp> tombstones_;
  uint64_t id_limit_ = 0;
  uint64_t seq_ = 0;
  int saves_ = 0;
  int commits_ = 0;
  bool fail_next_commit_ = false;
};

const Owner kOwner{1000, 1000};

class ObjectTableTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  // A new table over the same journal, as after a restart.
  void Reopen() {
    table_ = std::make_unique<ObjectTable>(1, &journal_);
    warnings_.clear();
    ASSERT_TRUE(table_->Load(&warnings_).ok());
  }

  ObjectID Blob(uint64_t size) {
    auto id = table_->NewId(true);
    EXPECT_TRUE(id.ok());
    auto r = table_->AddBlob(*id, size, kOwner);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return *id;
  }

  Result<ObjectRecord> CreateJson(const std::string& json) {
    auto spec = ParseCreateMeta(json);
    if (!spec.ok()) return spec.status();
    return table_->Create(*spec, kOwner);
  }

  // {"typename": type, "<field>": {"id": ...}, ...} plus any extra JSON members.
  ObjectID Make(const std::vector<std::pair<std::string, ObjectID>>& members,
                const std::string& extra = "") {
    std::string json = R"({"typename":"test::Thing")";
    for (auto& [field, id] : members)
      json += ",\"" + field + "\":{\"id\":\"" + id.ToString() + "\"}";
    json += extra + "}";
    auto r = CreateJson(json);
    EXPECT_TRUE(r.ok()) << json << ": " << r.status().ToString();
    return r.ok() ? r->id : ObjectID();
  }

  uint32_t Referrers(ObjectID id) { return table_->Get(id)->referrers; }

  std::vector<ObjectID> AllObjects() { return table_->ListObjects(0, 1u << 20); }

  MemJournal journal_;
  std::unique_ptr<ObjectTable> table_;
  std::vector<std::string> warnings_;
};

TEST_F(ObjectTableTest, AddBlobMakesItVisible) {
  auto id = table_->NewId(true);
  ASSERT_TRUE(id.ok());
  EXPECT_FALSE(table_->Exists(*id));
  EXPECT_FALSE(table_->Get(*id).has_value());
  auto r = table_->AddBlob(*id, 4097, kOwner);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(table_->Exists(*id));
  auto got = table_->Get(*id);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->type_name, kBlobTypename);
  EXPECT_EQ(got->size, 4097u);
  EXPECT_EQ(got->nbytes, 4097u);
  EXPECT_EQ(got->instance, 1u);
  EXPECT_TRUE(got->transient);
  EXPECT_EQ(got->owner.uid, 1000u);
  EXPECT_GT(got->timestamp_ms, 0);
  EXPECT_EQ(got->signature, MakeSignature(*id, got->timestamp_ms));
  EXPECT_TRUE(journal_.HasObject(*id));
}

TEST_F(ObjectTableTest, AddBlobTwiceIsAlreadyExists) {
  ObjectID b = Blob(10);
  auto again = table_->AddBlob(b, 20, kOwner);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(table_->Get(b)->size, 10u);
}

TEST_F(ObjectTableTest, CreateRecordsMembersAndFields) {
  ObjectID a = Blob(100);
  auto r = CreateJson(R"({"typename":"vineyard::Pair","first_":{"id":")" + a.ToString() +
                      R"("},"note":"hello"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->id.is_blob());
  EXPECT_EQ(r->id.instance(), 1u);
  EXPECT_TRUE(table_->Exists(r->id));
  auto got = table_->Get(r->id);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->type_name, "vineyard::Pair");
  ASSERT_EQ(got->members.size(), 1u);
  EXPECT_EQ(got->members[0], (std::pair<std::string, ObjectID>("first_", a)));
  EXPECT_EQ(ojson::parse(got->fields)["note"], "hello");
  EXPECT_EQ(Referrers(a), 1u);
  EXPECT_EQ(Referrers(r->id), 0u);
  EXPECT_TRUE(journal_.HasObject(r->id));
}

TEST_F(ObjectTableTest, CreateWithUnknownMemberIsNotFoundAndChangesNothing) {
  ObjectID a = Blob(100);
  Make({{"m", a}});
  auto before = table_->counts();
  auto objects_before = AllObjects();
  size_t journaled = journal_.object_count();
  ObjectID ghost = ObjectID::Make(true, 1, 999999);
  auto r = CreateJson(R"({"typename":"t","ok":{"id":")" + a.ToString() + R"("},"bad":{"id":")" +
                      ghost.ToString() + R"("}})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kNotFound);
  EXPECT_NE(r.status().message().find(ghost.ToString()), std::string::npos);
  EXPECT_EQ(AllObjects(), objects_before);
  EXPECT_EQ(table_->counts().objects, before.objects);
  EXPECT_EQ(Referrers(a), 1u) << "a failed create must not leave a reference behind";
  EXPECT_EQ(journal_.object_count(), journaled);
}

TEST_F(ObjectTableTest, NbytesSumsDistinctBlobs) {
  ObjectID a = Blob(100), b = Blob(250), c = Blob(7);
  ObjectID twice = Make({{"x", a}, {"y", a}});
  EXPECT_EQ(table_->Get(twice)->nbytes, 100u);
  ObjectID inner = Make({{"p", a}, {"q", b}});
  EXPECT_EQ(table_->Get(inner)->nbytes, 350u);
  // a reached directly and through `inner` still counts once.
  ObjectID outer = Make({{"inner", inner}, {"a", a}, {"c", c}, {"twice", twice}});
  EXPECT_EQ(table_->Get(outer)->nbytes, 357u);
  ObjectID none = Make({});
  EXPECT_EQ(table_->Get(none)->nbytes, 0u);
}

TEST_F(ObjectTableTest, CreateIgnoresTheCreatorsNbytes) {
  ObjectID a = Blob(100);
  ObjectID o = Make({{"a", a}}, R"(,"nbytes":99999)");
  EXPECT_EQ(table_->Get(o)->nbytes, 100u);
}

TEST_F(ObjectTableTest, RenderMetaShowsStoredFormWithMembersExpanded) {
  ObjectID a = Blob(100), b = Blob(28);
  ObjectID inner = Make({{"buf", b}});
  ObjectID o = Make({{"first_", a}, {"second_", inner}}, R"(,"note":[1,"two"])");
  auto text = table_->RenderMeta(o);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  ojson j = ojson::parse(*text);
  auto rec = *table_->Get(o);
  EXPECT_EQ(j["id"], o.ToString());
  EXPECT_EQ(j["typename"], "test::Thing");
  EXPECT_EQ(j["nbytes"], 128);
  EXPECT_EQ(j["instance_id"], 1);
  EXPECT_EQ(j["global"], false);
  EXPECT_EQ(j["transient"], true);
  EXPECT_EQ(j["signature"], rec.signature);
  EXPECT_EQ(j["__timestamp"], rec.timestamp_ms);
  EXPECT_EQ(j["note"].dump(), R"([1,"two"])");
  // Members are expanded in place, recursively.
  ASSERT_TRUE(j["first_"].is_object());
  EXPECT_EQ(j["first_"]["id"], a.ToString());
  EXPECT_EQ(j["first_"]["typename"], kBlobTypename);
  EXPECT_EQ(j["first_"]["nbytes"], 100);
  EXPECT_EQ(j["second_"]["id"], inner.ToString());
  EXPECT_EQ(j["second_"]["buf"]["id"], b.ToString());
  EXPECT_EQ(j["second_"]["buf"]["nbytes"], 28);
  // Field order: the stored fields first, then the user's in the order written.
  std::vector<std::string> keys;
  for (auto& [k, v] : j.items()) keys.push_back(k);
  ASSERT_GE(keys.size(), 8u);
  EXPECT_EQ(keys[0], "id");
}

TEST_F(ObjectTableTest, RenderMetaOfUnknownObjectIsNotFound) {
  auto text = table_->RenderMeta(ObjectID::Make(false, 1, 12345));
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), Status::Code::kNotFound);
}

TEST_F(ObjectTableTest, PersistFlipsObjectAndMembersRecursivelyAndJournalsThem) {
  ObjectID a = Blob(1), b = Blob(2), lone = Blob(3);
  ObjectID inner = Make({{"b", b}});
  ObjectID o = Make({{"a", a}, {"inner", inner}});
  EXPECT_EQ(table_->counts().persisted, 0u);
  std::vector<ObjectID> changed;
  ASSERT_TRUE(table_->Persist(o, kOwner, &changed).ok());
  std::set<ObjectID> flipped(changed.begin(), changed.end());
  EXPECT_EQ(flipped, (std::set<ObjectID>{o, a, inner, b}));
  for (ObjectID id : {o, a, inner, b}) {
    EXPECT_FALSE(table_->Get(id)->transient) << id.ToString();
    EXPECT_FALSE(journal_.Stored(id).transient) << id.ToString() << " not journaled";
  }
  EXPECT_TRUE(table_->Get(lone)->transient);
  EXPECT_TRUE(journal_.Stored(lone).transient);
  EXPECT_EQ(table_->counts().persisted, 4u);
  EXPECT_NE(table_->RenderMeta(o)->find("\"transient\": false"), std::string::npos);

  // Idempotent: nothing flips, nothing is committed.
  int commits = journal_.commits();
  changed.clear();
  ASSERT_TRUE(table_->Persist(o, kOwner, &changed).ok());
  EXPECT_TRUE(changed.empty());
  EXPECT_EQ(journal_.commits(), commits);
  EXPECT_EQ(table_->counts().persisted, 4u);
}

TEST_F(ObjectTableTest, PersistOfUnknownObjectIsNotFound) {
  EXPECT_EQ(table_->Persist(ObjectID::Make(false, 1, 777), kOwner).code(), Status::Code::kNotFound);
}

TEST_F(ObjectTableTest, CreatingAPersistedObjectPersistsItsMembers) {
  ObjectID a = Blob(1);
  ObjectID inner = Make({{"a", a}});
  ObjectID o = Make({{"inner", inner}}, R"(,"transient":false)");
  for (ObjectID id : {o, inner, a}) {
    EXPECT_FALSE(table_->Get(id)->transient) << id.ToString();
    EXPECT_FALSE(journal_.Stored(id).transient) << id.ToString();
  }
  EXPECT_EQ(table_->counts().persisted, 3u);
  ObjectID g = Make({}, R"(,"global":true)");
  EXPECT_TRUE(table_->Get(g)->global);
  EXPECT_FALSE(table_->Get(g)->transient);
}

TEST_F(ObjectTableTest, DeleteOfAMemberIsBusy) {
  ObjectID a = Blob(1);
  ObjectID o = Make({{"a", a}});
  auto d = table_->Delete(a);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), Status::Code::kBusy);
  EXPECT_TRUE(table_->Exists(a));
  EXPECT_TRUE(journal_.HasObject(a));
  EXPECT_TRUE(table_->Exists(o));
}

TEST_F(ObjectTableTest, DeleteOfUnknownObjectIsNotFound) {
  auto d = table_->Delete(ObjectID::Make(true, 1, 4242));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), Status::Code::kNotFound);
}

TEST_F(ObjectTableTest, DeleteCascadesToUnreferencedUnnamedMembers) {
  ObjectID a = Blob(10), b = Blob(20);
  ObjectID inner = Make({{"b", b}, {"b_again", b}});
  ObjectID o = Make({{"a", a}, {"inner", inner}, {"a_again", a}});
  auto before = table_->counts();
  auto d = table_->Delete(o);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  ASSERT_EQ(d->objects.size(), 4u);
  EXPECT_EQ(d->objects[0].id, o);
  std::set<ObjectID> gone;
  for (auto& r : d->objects) gone.insert(r.id);
  EXPECT_EQ(gone, (std::set<ObjectID>{o, a, inner, b}));
  for (ObjectID id : {o, a, inner, b}) {
    EXPECT_FALSE(table_->Exists(id)) << id.ToString();
    EXPECT_FALSE(journal_.HasObject(id)) << id.ToString();
  }
  auto after = table_->counts();
  EXPECT_EQ(after.objects, before.objects - 4);
  EXPECT_EQ(after.blobs, before.blobs - 2);
  EXPECT_EQ(after.blob_bytes, before.blob_bytes - 30);
}

TEST_F(ObjectTableTest, DeleteKeepsAMemberReferencedElsewhere) {
  ObjectID shared = Blob(10), own = Blob(5);
  ObjectID o1 = Make({{"s", shared}, {"own", own}});
  ObjectID o2 = Make({{"s", shared}});
  EXPECT_EQ(Referrers(shared), 2u);
  auto d = table_->Delete(o1);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE(table_->Exists(shared));
  EXPECT_FALSE(table_->Exists(own));
  EXPECT_EQ(Referrers(shared), 1u);
  EXPECT_EQ(table_->Delete(shared).status().code(), Status::Code::kBusy);
  // The last referrer takes it along.
  d = table_->Delete(o2);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(table_->Exists(shared));
  EXPECT_EQ(d->objects.size(), 2u);
}

TEST_F(ObjectTableTest, DeleteKeepsANamedMember) {
  ObjectID named = Blob(10);
  ObjectID inner = Make({{"n", named}});
  ObjectID o = Make({{"inner", inner}});
  ASSERT_TRUE(table_->PutName("keep", named, kOwner, false).ok());
  auto d = table_->Delete(o);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_FALSE(table_->Exists(o));
  EXPECT_FALSE(table_->Exists(inner));
  EXPECT_TRUE(table_->Exists(named));
  EXPECT_TRUE(journal_.HasObject(named));
  EXPECT_EQ(Referrers(named), 0u);
  EXPECT_TRUE(d->names.empty());
  EXPECT_TRUE(table_->GetName("keep").has_value());
  // No longer a member: it can go now, and its name with it.
  d = table_->Delete(named);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->names, std::vector<std::string>{"keep"});
}

TEST_F(ObjectTableTest, DeleteDropsNamesPointingAtTheObject) {
  ObjectID o = Make({});
  ObjectID other = Make({});
  ASSERT_TRUE(table_->PutName("a", o, kOwner, false).ok());
  ASSERT_TRUE(table_->PutName("b", o, kOwner, false).ok());
  ASSERT_TRUE(table_->PutName("c", other, kOwner, false).ok());
  auto d = table_->Delete(o);
  ASSERT_TRUE(d.ok());
  std::set<std::string> dropped(d->names.begin(), d->names.end());
  EXPECT_EQ(dropped, (std::set<std::string>{"a", "b"}));
  EXPECT_FALSE(table_->GetName("a").has_value());
  EXPECT_FALSE(table_->GetName("b").has_value());
  EXPECT_FALSE(journal_.HasName("a"));
  EXPECT_FALSE(journal_.HasName("b"));
  EXPECT_TRUE(table_->GetName("c").has_value());
  EXPECT_TRUE(journal_.HasName("c"));
  EXPECT_EQ(table_->counts().names, 1u);
}

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

TEST_F(ObjectTableTest, ListObjectsPaginatesInIdOrder) {
  std::set<ObjectID> made;
  for (int i = 0; i < 10; ++i) made.insert(Blob(1));
  for (int i = 0; i < 7; ++i) made.insert(Make({}));
  std::vector<ObjectID> seen;
  uint64_t after = 0;
  for (;;) {
    auto page = table_->ListObjects(after, 3);
    EXPECT_LE(page.size(), 3u);
    if (page.empty()) break;
    for (ObjectID id : page) {
      EXPECT_GT(id.raw(), after);
      seen.push_back(id);
    }
    after = page.back().raw();
  }
  EXPECT_EQ(seen.size(), made.size());
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(std::set<ObjectID>(seen.begin(), seen.end()), made);
  EXPECT_TRUE(table_->ListObjects(0, 0).empty());
}

TEST_F(ObjectTableTest, ListNamesPaginatesInByteOrder) {
  ObjectID o = Make({});
  std::vector<std::string> names = {"b", "a", "c", "aa", "Z", "a.b", "zz"};
  for (auto& n : names) ASSERT_TRUE(table_->PutName(n, o, kOwner, false).ok());
  std::sort(names.begin(), names.end());
  std::vector<std::string> seen;
  std::string after;
  for (;;) {
    auto page = table_->ListNames(after, 2);
    EXPECT_LE(page.size(), 2u);
    if (page.empty()) break;
    for (auto& [name, rec] : page) {
      EXPECT_EQ(rec.id, o);
      seen.push_back(name);
    }
    after = page.back().first;
  }
  EXPECT_EQ(seen, names);
}

TEST_F(ObjectTableTest, CountsTrackObjectsBlobsPersistedNamesAndBytes) {
  ObjectID a = Blob(100), b = Blob(5000);
  ObjectID o = Make({{"a", a}});
  ASSERT_TRUE(table_->PutName("n", b, kOwner, false).ok());
  auto c = table_->counts();
  EXPECT_EQ(c.objects, 3u);
  EXPECT_EQ(c.blobs, 2u);
  EXPECT_EQ(c.blob_bytes, 5100u);
  EXPECT_EQ(c.persisted, 0u);
  EXPECT_EQ(c.names, 1u);
  ASSERT_TRUE(table_->Persist(o, kOwner).ok());
  EXPECT_EQ(table_->counts().persisted, 2u);
  ASSERT_TRUE(table_->Delete(o).ok());
  c = table_->counts();
  EXPECT_EQ(c.objects, 1u);
  EXPECT_EQ(c.blobs, 1u);
  EXPECT_EQ(c.blob_bytes, 5000u);
  EXPECT_EQ(c.persisted, 0u);
}

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

}  // namespace
}  // namespace vineyard

namespace vineyard {
namespace {

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

// A lattice of shared members (each level holding the one below twice) would render
// 2^levels copies; a chain deeper than kMaxRenderDepth would render without end.
TEST_F(ObjectTableTest, RenderMetaIsBoundedForLatticesAndLongChains) {
  ObjectID below = Blob(1);
  for (int level = 0; level < 40; ++level) {
    auto up = CreateJson(R"({"typename":"t","a":{"id":")" + below.ToString() + R"("},"b":{"id":")" +
                         below.ToString() + "\"}}");
    ASSERT_TRUE(up.ok()) << up.status().ToString();
    below = up->id;
  }
  auto text = table_->RenderMeta(below);
  ASSERT_TRUE(text.ok());
  EXPECT_LT(text->size(), 32u << 20) << "rendered without a bound";
  ojson top = ojson::parse(*text);
  EXPECT_EQ(top["a"]["typename"], "t");
  EXPECT_TRUE(top["a"].contains("nbytes")) << "the first members are expanded";

  // A chain of 1,000 objects: creating (nbytes walks every member) and rendering
  // do not recurse along it; past kMaxRenderDepth members stay references.
  ObjectID tail = Blob(3);
  ObjectID head = tail;
  for (int i = 0; i < 1000; ++i) {
    auto up = CreateJson(R"({"typename":"c","next":{"id":")" + head.ToString() + "\"}}");
    ASSERT_TRUE(up.ok()) << up.status().ToString();
    head = up->id;
  }
  EXPECT_EQ(table_->Get(head)->nbytes, 3u);
  auto chain = table_->RenderMeta(head);
  ASSERT_TRUE(chain.ok());
  ojson j = ojson::parse(*chain);
  int depth = 0;
  const ojson* cur = &j;
  while (cur->contains("next") && (*cur)["next"].contains("typename")) {
    cur = &(*cur)["next"];
    ++depth;
  }
  EXPECT_EQ(depth, kMaxRenderDepth);
  EXPECT_EQ((*cur)["next"].size(), 1u) << "a reference: {\"id\": ...}";
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

const Owner kOther{2000, 2000};

TEST_F(ObjectTableTest, AnotherOwnersReferenceIsWeakAndItsCountsStayConsistent) {
  ObjectID b = Blob(10);
  auto spec = ParseCreateMeta(R"({"typename":"t","m":{"id":")" + b.ToString() + R"("}})");
  ASSERT_TRUE(spec.ok());
  auto weak = table_->Create(*spec, kOther);
  ASSERT_TRUE(weak.ok());
  EXPECT_EQ(Referrers(b), 1u);
  EXPECT_EQ(table_->Get(b)->ReferrersOf(kOwner.uid), 0u);
  // The member's owner deletes it; the holder shows it deleted.
  ASSERT_TRUE(table_->Delete(b).ok());
  auto meta = table_->RenderMeta(weak->id);
  ASSERT_TRUE(meta.ok());
  EXPECT_NE(meta->find("\"error\": \"deleted\""), std::string::npos) << *meta;
  // Persisting the holder as another user: nothing to flip that is not its own.
  EXPECT_TRUE(table_->Persist(weak->id, kOther).ok());
  // Deleting the holder later leaves no stray count behind (no underflow).
  ASSERT_TRUE(table_->Delete(weak->id).ok());
  Reopen();
  EXPECT_TRUE(warnings_.empty()) << warnings_[0];
  EXPECT_TRUE(AllObjects().empty());
}

TEST_F(ObjectTableTest, PersistingAnotherOwnersTransientMemberIsNotOwner) {
  ObjectID b = Blob(10);
  auto spec =
      ParseCreateMeta(R"({"typename":"t","transient":false,"m":{"id":")" + b.ToString() + R"("}})");
  ASSERT_TRUE(spec.ok());
  auto refused = table_->Create(*spec, kOther);
  EXPECT_EQ(refused.status().code(), Status::Code::kNotOwner);
  EXPECT_NE(refused.status().message().find("belongs to uid 1000"), std::string::npos)
      << refused.status().message();
  EXPECT_TRUE(table_->Get(b)->transient);
  ObjectID mine = Make({{"m", b}});
  EXPECT_EQ(table_->Persist(mine, kOther).code(), Status::Code::kNotOwner);
  EXPECT_TRUE(table_->Get(b)->transient);
  EXPECT_TRUE(table_->Persist(mine, Owner{0, 0}).ok()) << "root may persist anything";
  EXPECT_FALSE(table_->Get(b)->transient);
  EXPECT_TRUE(table_->Create(*spec, kOther).ok()) << "a persisted member may be held";
}

}  // namespace
}  // namespace vineyard
