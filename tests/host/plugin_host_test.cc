// Tests host/ (plugin_host.cc, plugin_calls.cc) without a mount: the builtin plugins
// built in this tree (json.so, numpy.so) are loaded from the build's plugins/ directory
// into a host over a real Store (arena directory, state=none) and object table, and
// their resolvers and builders are called directly.
// As root, Store::Open mounts a tmpfs on the arena: the fixture unmounts it.
#include "host/plugin_host.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "meta/object_meta.h"
#include "store/objects.h"
#include "tests/npy_bytes.h"

namespace vineyard {
namespace {

using vytest::Doubles;
using vytest::Int64s;
using vytest::Npy;

class PluginHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vy_host_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    StoreOptions opts;
    opts.state = "none";
    opts.arena = root_ + "/arena";
    opts.size = 64 << 20;
    opts.durability = Durability::kNone;
    arena_ = opts.arena;
    std::filesystem::create_directories(arena_);
    std::filesystem::create_directories(root_ + "/plugins");
    InstanceId instance = 0;
    auto objects = ObjectStore::Open(opts, &instance);
    ASSERT_TRUE(objects.ok()) << objects.status().ToString();
    objects_ = std::move(*objects);
    host_ = std::make_unique<PluginHost>(
        objects_.get(), PluginHostOptions{root_ + "/plugins", VINEYARDFS_PLUGIN_BUILD_DIR});
    host_->Start();
  }
  void TearDown() override {
    host_.reset();
    for (uint64_t key : uploads_) objects_->DropUpload(key);
    objects_.reset();
    umount2(arena_.c_str(), MNT_DETACH);  // the tmpfs Store::Open mounted as root
    std::filesystem::remove_all(root_);
  }

  ObjectID Meta(const std::string& json) {
    auto spec = ParseCreateMeta(json);
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    auto rec = objects_->CreateMeta(*spec, Owner{0, 0});
    EXPECT_TRUE(rec.ok()) << rec.status().ToString();
    return rec.ok() ? rec->id : ObjectID();
  }
  // The bytes of a resolved view: generated segments, and blob ranges read pinned.
  std::string ViewBytes(ObjectID id, const std::string& name) {
    auto view = host_->Resolve(id, name);
    EXPECT_TRUE(view.ok()) << view.status().ToString();
    if (!view.ok()) return "";
    std::string out;
    for (const ViewSegment& seg : (*view)->segments) {
      if (!seg.blob.valid()) {
        out += seg.bytes;
        continue;
      }
      auto pinned = objects_->Pin(seg.blob);
      EXPECT_TRUE(pinned.ok()) << pinned.status().ToString();
      if (!pinned.ok()) return "";
      out.append(pinned->data + seg.blob_offset, seg.length);
      objects_->Unpin(*pinned);
    }
    EXPECT_EQ(out.size(), (*view)->size);
    return out;
  }
  // An upload in the arena's staging/ holding `bytes`, opened read-only (as the seal
  // hands it to builders, which copy from it within the arena's file system).
  int UploadFd(const std::string& bytes) {
    auto up = objects_->store()->CreateUpload();
    EXPECT_TRUE(up.ok()) << up.status().ToString();
    if (!up.ok()) return -1;
    EXPECT_TRUE(objects_->store()->ReserveUpload(up->key, bytes.size()).ok());
    EXPECT_EQ(pwrite(up->fd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
    int fd = open(objects_->store()->UploadPath(up->key).c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    close(up->fd);
    uploads_.push_back(up->key);
    return fd;
  }

  std::string root_, arena_;
  std::vector<uint64_t> uploads_;
  std::unique_ptr<ObjectStore> objects_;
  std::unique_ptr<PluginHost> host_;
};

TEST_F(PluginHostTest, LoadsTheBuiltinPluginsOfTheBuildTree) {
  auto json = host_->Find("json.so");
  auto numpy = host_->Find("numpy.so");
  ASSERT_TRUE(json && numpy);
  EXPECT_TRUE(json->loaded) << json->error;
  EXPECT_TRUE(numpy->loaded) << numpy->error;
  EXPECT_TRUE(json->builtin);
  EXPECT_GE(host_->loaded_count(), 2u);
}

TEST_F(PluginHostTest, JsonResolverShowsAPairOfScalarsInline) {
  ObjectID a = Meta(R"({"typename":"vineyard::Scalar<int>","value_":"42"})");
  ObjectID b = Meta(R"({"typename":"vineyard::Scalar<std::string>","value_":"hi"})");
  ObjectID pair = Meta(R"({"typename":"vineyard::Pair","first_":{"id":")" + a.ToString() +
                       R"("},"second_":{"id":")" + b.ToString() + "\"}}");
  auto rec = objects_->table()->Get(pair);
  ASSERT_TRUE(rec);
  EXPECT_EQ(host_->ViewNames(*rec), std::vector<std::string>{"value.json"});
  EXPECT_EQ(ViewBytes(pair, "value.json"), "[\n  42,\n  \"hi\"\n]\n");
  EXPECT_EQ(host_->Resolve(pair, "tensor.npy").status().code(), Status::Code::kNotFound);
}

TEST_F(PluginHostTest, NumpyBuilderMakesATensorWhoseViewIsTheSameNpy) {
  const std::string npy = Npy("<i8", "(4,)", Int64s({1, 2, 3, 4}));
  int fd = UploadFd(npy);
  auto built = host_->Build("x.npy", fd, npy.size(), Owner{0, 0});
  close(fd);
  ASSERT_TRUE(built.has_value());
  ASSERT_TRUE(built->ok()) << built->status().ToString();
  auto rec = objects_->table()->Get(**built);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->type_name.rfind("vineyard::Tensor", 0), 0u) << rec->type_name;
  EXPECT_EQ(ViewBytes(**built, "tensor.npy"), npy);
}

TEST_F(PluginHostTest, NoBuilderClaimsAnUploadOfAnotherKind) {
  int fd = UploadFd("plain text");
  auto built = host_->Build("notes.txt", fd, 10, Owner{0, 0});
  close(fd);
  EXPECT_FALSE(built.has_value());
}

TEST_F(PluginHostTest, AFailedBuildLeavesNoObjectBehind) {
  const uint64_t before = objects_->table()->counts().objects;
  // The header promises 1000 elements; the data holds two.
  const std::string bad = Npy("<i8", "(1000,)", Int64s({1, 2}));
  int fd = UploadFd(bad);
  auto built = host_->Build("t.npy", fd, bad.size(), Owner{0, 0});
  close(fd);
  ASSERT_TRUE(built.has_value());
  EXPECT_FALSE(built->ok());
  EXPECT_EQ(objects_->table()->counts().objects, before);
}

}  // namespace
}  // namespace vineyard
