// Tests fs/node_table.cc and the rows of fs/nodes_*.cc without a mount: the table's
// shape, and stat, lookup, list, readlink and render of each kind that needs no FUSE
// request, over a real Store (arena and RocksDB in a temp dir) and ObjectTable.
// Opening and reading answer a FUSE request: the integration tests drive those.
// As root, Store::Open mounts a tmpfs on the arena: the fixture unmounts it.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "fs/node.h"
#include "store/store.h"
#include "tests/store/temp_dir.h"

namespace vineyard {
namespace {

bool IsNotFound(const Status& s) { return s.code() == Status::Code::kNotFound; }

std::vector<Kind> AllKinds() {
  std::vector<Kind> out;
  for (size_t i = 0; i < kKindCount; ++i) out.push_back(static_cast<Kind>(i));
  return out;
}

TEST(NodeTable, HasOneRowPerKindInKindOrder) {
  std::set<std::string> paths;
  for (Kind k : AllKinds()) {
    const NodeOps& ops = OpsOf(k);
    EXPECT_EQ(ops.kind, k);
    ASSERT_NE(ops.path, nullptr);
    EXPECT_TRUE(paths.insert(ops.path).second) << "two rows at " << ops.path;
    EXPECT_NE(ops.stat, nullptr) << ops.path << " has no attributes";
  }
  EXPECT_EQ(paths.size(), kKindCount);
}

TEST(NodeTable, DirectoriesLookUpAndListFilesOpenAndReadLinksResolve) {
  for (Kind k : AllKinds()) {
    const NodeOps& ops = OpsOf(k);
    const bool dir = ops.lookup != nullptr, file = ops.open != nullptr,
               link = ops.readlink != nullptr;
    EXPECT_EQ(ops.is_dir(), dir) << ops.path;
    EXPECT_EQ(ops.list != nullptr, dir) << ops.path << ": a directory lists, nothing else";
    EXPECT_EQ(ops.read != nullptr, file) << ops.path << ": what opens reads";
    EXPECT_EQ(int{dir} + int{file} + int{link}, 1) << ops.path << " is one of the three";
    if (ops.render) {
      EXPECT_TRUE(file) << ops.path << ": generated text is opened";
    }
    const std::string path = ops.path;
    EXPECT_EQ(dir, path.back() == '/') << path;
  }
}

TEST(NodeTable, FixedNodesKeepTheInodeNumbersTheKernelKnows) {
  EXPECT_EQ(OpsOf(Kind::kRoot).fixed_ino, fuse_ino_t{FUSE_ROOT_ID});
  const std::vector<std::pair<Kind, fuse_ino_t>> fixed = {
      {Kind::kRoot, 1},      {Kind::kObjects, 2},   {Kind::kNames, 3},  {Kind::kNew, 4},
      {Kind::kResolvers, 5}, {Kind::kInstances, 6}, {Kind::kStatus, 7}, {Kind::kMetrics, 8}};
  InodeTable inodes;
  size_t fixed_rows = 0;
  for (Kind k : AllKinds()) {
    if (OpsOf(k).fixed_ino != 0) ++fixed_rows;
    EXPECT_EQ(InodeTable::FixedIno(k), OpsOf(k).fixed_ino);
  }
  EXPECT_EQ(fixed_rows, fixed.size());
  for (auto& [kind, ino] : fixed) {
    EXPECT_EQ(OpsOf(kind).fixed_ino, ino) << OpsOf(kind).path;
    auto key = inodes.Get(ino);
    ASSERT_TRUE(key.has_value()) << "a new InodeTable knows " << OpsOf(kind).path;
    EXPECT_EQ(key->kind, kind);
  }
  EXPECT_EQ(inodes.size(), fixed.size());
}

TEST(NodeTable, OnlyNamesThatChangeKindAreNotCachedAsEntries) {
  for (Kind k : AllKinds()) {
    const bool uncached = k == Kind::kUpload || k == Kind::kViewFile || k == Kind::kUploadError;
    EXPECT_EQ(OpsOf(k).entry_uncached, uncached) << OpsOf(k).path;
  }
}

// A Store and ObjectTable in a temp dir, and the FsState the rows read (no plugin
// host: resolvers/ and views/ are then empty).
class NodeRowsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions so;
    so.state = dir_.path() + "/state";
    so.arena = dir_.path() + "/arena";
    so.size = 1 << 20;
    so.durability = Durability::kNone;
    arena_ = so.arena;
    InstanceId instance = 1;
    auto store = Store::Open(so, &instance);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    table_ = std::make_unique<ObjectTable>(instance, store_->journal());
    std::vector<std::string> warnings;
    ASSERT_TRUE(table_->Load(&warnings).ok());
    fs_ = std::make_unique<FsState>(store_.get(), table_.get(), FsOptions{});
  }
  void TearDown() override {
    fs_.reset();
    table_.reset();
    store_.reset();
    umount2(arena_.c_str(), MNT_DETACH);
  }

  ObjectID AddBlob(uint64_t size) {
    auto id = table_->NewId(true);
    EXPECT_TRUE(id.ok());
    auto rec = table_->AddBlob(*id, size, owner_);
    EXPECT_TRUE(rec.ok()) << rec.status().ToString();
    return *id;
  }
  ObjectID AddComposite(const std::string& field, ObjectID member) {
    CreateSpec spec;
    spec.type_name = "vineyard::Pair";
    spec.members = {{field, member}};
    spec.fields = "{}";
    auto rec = table_->Create(spec, owner_);
    EXPECT_TRUE(rec.ok()) << rec.status().ToString();
    return rec->id;
  }
  std::vector<std::string> List(const NodeKey& dir) {
    DirListing out;
    OpsOf(dir.kind).list(fs_.get(), dir, &out);
    std::vector<std::string> names;
    for (size_t i = 0; i < out.size(); ++i) names.push_back(out.Name(i));
    return names;
  }
  Status Stat(const NodeKey& key, struct stat* st, double* timeout = nullptr) {
    double t;
    return StatNode(fs_.get(), key, 99, st, timeout ? timeout : &t);
  }
  // Looks `name` up under `dir`: the child's key (kind kRoot if not found).
  NodeKey Child(const NodeKey& dir, const std::string& name, Status* status = nullptr) {
    fuse_entry_param e;
    Status s = LookupChild(fs_.get(), dir, name, &e);
    if (status) *status = s;
    if (!s.ok()) return NodeKey{};
    auto key = fs_->inodes.Get(e.ino);
    EXPECT_TRUE(key.has_value());
    return key ? *key : NodeKey{};
  }

  TempDir dir_{"vy-node-table"};
  std::string arena_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ObjectTable> table_;
  std::unique_ptr<FsState> fs_;
  const Owner owner_{1234, 5678};
};

TEST_F(NodeRowsTest, RootListsAndLooksUpTheFixedTree) {
  const NodeKey root{Kind::kRoot, 0, {}};
  const std::vector<std::string> names = List(root);
  EXPECT_EQ(names, (std::vector<std::string>{"objects", "names", "new", "resolvers", "instances",
                                             "status.json", "metrics"}));
  for (const std::string& name : names) {
    fuse_entry_param e;
    ASSERT_TRUE(LookupChild(fs_.get(), root, name, &e).ok()) << name;
    EXPECT_EQ(e.ino, OpsOf(Child(root, name).kind).fixed_ino) << name;
    EXPECT_NE(e.ino, 0u);
  }
  Status s;
  Child(root, "nothing", &s);
  EXPECT_TRUE(IsNotFound(s)) << s.ToString();
  struct stat st;
  ASSERT_TRUE(Stat(root, &st).ok());
  EXPECT_EQ(st.st_mode, S_IFDIR | 0755);
  ASSERT_TRUE(Stat(NodeKey{Kind::kObjects, 0, {}}, &st).ok());
  EXPECT_EQ(st.st_mode, S_IFDIR | 01777) << "objects/ is sticky and world-writable";
}

TEST_F(NodeRowsTest, ABlobHasDataAndNoMembers) {
  const ObjectID id = AddBlob(5);
  const NodeKey objects{Kind::kObjects, 0, {}};
  EXPECT_EQ(List(objects), (std::vector<std::string>{id.ToString()}));
  const NodeKey dir = Child(objects, id.ToString());
  ASSERT_EQ(dir.kind, Kind::kObjectDir);
  EXPECT_EQ(List(dir), (std::vector<std::string>{"meta.json", "data", "views"}));
  struct stat st;
  ASSERT_TRUE(Stat(dir, &st).ok());
  EXPECT_EQ(st.st_mode, S_IFDIR | 0755);
  EXPECT_EQ(st.st_uid, owner_.uid);
  const NodeKey data = Child(dir, "data");
  ASSERT_EQ(data.kind, Kind::kDataFile);
  ASSERT_TRUE(Stat(data, &st).ok());
  EXPECT_EQ(st.st_mode, S_IFREG | 0444);
  EXPECT_EQ(st.st_size, 5);
  Status s;
  Child(dir, "members", &s);
  EXPECT_TRUE(IsNotFound(s)) << "a blob has no members/: " << s.ToString();
  Child(objects, "not-an-id", &s);
  EXPECT_TRUE(IsNotFound(s)) << s.ToString();
}

TEST_F(NodeRowsTest, MembersAreLinksToTheirObjects) {
  const ObjectID blob = AddBlob(3);
  const ObjectID pair = AddComposite("first", blob);
  const NodeKey dir{Kind::kObjectDir, pair.raw(), {}};
  EXPECT_EQ(List(dir), (std::vector<std::string>{"meta.json", "members", "views"}));
  const NodeKey members = Child(dir, "members");
  ASSERT_EQ(members.kind, Kind::kMembersDir);
  EXPECT_EQ(List(members), (std::vector<std::string>{"first"}));
  const NodeKey link = Child(members, "first");
  ASSERT_EQ(link.kind, Kind::kMemberLink);
  struct stat st;
  ASSERT_TRUE(Stat(link, &st).ok());
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  const std::string target = OpsOf(link.kind).readlink(fs_.get(), link);
  EXPECT_EQ(target, "../../" + blob.ToString());
  EXPECT_EQ(st.st_size, static_cast<off_t>(target.size()));
  Status s;
  Child(members, "second", &s);
  EXPECT_TRUE(IsNotFound(s)) << s.ToString();
  Child(dir, "data", &s);
  EXPECT_TRUE(IsNotFound(s)) << "a composite has no data: " << s.ToString();
}

TEST_F(NodeRowsTest, MetaJsonIsSizedByTheTextItRenders) {
  const ObjectID id = AddBlob(7);
  const NodeKey meta{Kind::kMetaFile, id.raw(), {}};
  std::string text;
  ASSERT_TRUE(OpsOf(meta.kind).render(fs_.get(), meta, &text).ok());
  auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["id"], id.ToString());
  struct stat st;
  double timeout;
  ASSERT_TRUE(Stat(meta, &st, &timeout).ok());
  EXPECT_EQ(st.st_size, static_cast<off_t>(text.size()));
  EXPECT_EQ(timeout, 1) << "meta.json changes when the object is persisted";
}

TEST_F(NodeRowsTest, NamesAreLinksIntoObjects) {
  const ObjectID id = AddBlob(1);
  ASSERT_TRUE(table_->PutName("weights", id, owner_, /*replace=*/false).ok());
  const NodeKey names{Kind::kNames, 0, {}};
  EXPECT_EQ(List(names), (std::vector<std::string>{"weights"}));
  const NodeKey link = Child(names, "weights");
  ASSERT_EQ(link.kind, Kind::kNameLink);
  const std::string target = OpsOf(link.kind).readlink(fs_.get(), link);
  EXPECT_EQ(target, "../objects/" + id.ToString());
  struct stat st;
  ASSERT_TRUE(Stat(link, &st).ok());
  EXPECT_EQ(st.st_size, static_cast<off_t>(target.size()));
  const NodeKey gone{Kind::kNameLink, 0, "gone"};
  EXPECT_EQ(OpsOf(Kind::kNameLink).readlink(fs_.get(), gone), "");
  EXPECT_TRUE(IsNotFound(Stat(gone, &st)));
}

TEST_F(NodeRowsTest, AVanishedObjectsNodesAreNotFound) {
  const ObjectID id = AddBlob(2);
  ASSERT_TRUE(fs_->objects.Delete(id).ok());
  struct stat st;
  for (Kind k : {Kind::kObjectDir, Kind::kDataFile, Kind::kMetaFile, Kind::kMembersDir}) {
    Status s = Stat(NodeKey{k, id.raw(), {}}, &st);
    EXPECT_TRUE(IsNotFound(s)) << OpsOf(k).path << ": " << s.ToString();
  }
}

TEST_F(NodeRowsTest, StatusAndInstancesAreGeneratedPerStat) {
  std::string text;
  const NodeKey status{Kind::kStatus, 0, {}};
  ASSERT_TRUE(OpsOf(status.kind).render(fs_.get(), status, &text).ok());
  EXPECT_EQ(nlohmann::json::parse(text)["instance"], 1);
  struct stat st;
  double timeout;
  ASSERT_TRUE(Stat(status, &st, &timeout).ok());
  EXPECT_EQ(st.st_mode, S_IFREG | 0444);
  EXPECT_GT(st.st_size, 0);
  EXPECT_EQ(timeout, 0) << "generated files are never cached";
  const NodeKey instances{Kind::kInstances, 0, {}};
  EXPECT_EQ(List(instances), (std::vector<std::string>{"1.json"}));
  const NodeKey self = Child(instances, "1.json");
  ASSERT_EQ(self.kind, Kind::kInstanceFile);
  ASSERT_TRUE(OpsOf(self.kind).render(fs_.get(), self, &text).ok());
  EXPECT_EQ(nlohmann::json::parse(text)["self"], true);
  Status s;
  Child(instances, "2.json", &s);
  EXPECT_TRUE(IsNotFound(s)) << "no such peer: " << s.ToString();
}

TEST_F(NodeRowsTest, EmptyNewAndNoPluginHostListNothing) {
  EXPECT_TRUE(List(NodeKey{Kind::kNew, 0, {}}).empty());
  EXPECT_TRUE(List(NodeKey{Kind::kResolvers, 0, {}}).empty());
  Status s;
  Child(NodeKey{Kind::kNew, 0, {}}, "x", &s);
  EXPECT_TRUE(IsNotFound(s)) << s.ToString();
  Child(NodeKey{Kind::kResolvers, 0, {}}, "numpy.so", &s);
  EXPECT_TRUE(IsNotFound(s)) << s.ToString();
}

TEST_F(NodeRowsTest, OnlyDirectoriesHaveChildren) {
  fuse_entry_param e;
  Status s = LookupChild(fs_.get(), NodeKey{Kind::kStatus, 0, {}}, "x", &e);
  EXPECT_TRUE(IsNotFound(s)) << s.ToString();
  EXPECT_EQ(s.message(), "not a directory");
}

}  // namespace
}  // namespace vineyard
