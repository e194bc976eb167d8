// Tests meta/object_table.cc over an in-memory Journal (object_table_fixture.h): create,
// render, persist, delete, listing and counts; names, loading and replication are in
// object_table_{names,load,replication}_test.cc.
#include "meta/object_table.h"

#include "object_table_fixture.h"

namespace vineyard {
namespace {

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
