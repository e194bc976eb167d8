// The fixture of the tests of store/store.cc (store_*_test.cc): a Store on a real
// arena directory and a real RocksDB state. As root, Store::Open mounts a tmpfs on the
// arena: the fixture unmounts it.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "store/arena.h"
#include "store/state_db.h"
#include "store/store.h"
#include "tests/store/temp_dir.h"

namespace vineyard {

constexpr uint64_t kKiB = 1024;

inline std::string Bytes(uint64_t size, uint32_t seed) {
  std::string bytes(size, '\0');
  std::mt19937 rng(seed);
  for (auto& c : bytes) c = static_cast<char>(rng());
  return bytes;
}

inline bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    opts_.state = root_ + "/state";
    opts_.arena = root_ + "/arena";
    opts_.size = 1 << 20;
    opts_.durability = Durability::kNone;
  }
  void TearDown() override {
    store_.reset();
    // As root the store mounted a tmpfs on the arena; it outlives the Store by design.
    umount2(opts_.arena.c_str(), MNT_DETACH);
  }

  void Open(Durability durability, uint64_t size) {
    store_.reset();
    opts_.durability = durability;
    opts_.size = size;
    InstanceId instance = 1;
    auto s = Store::Open(opts_, &instance);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }

  ObjectID NextId() { return ObjectID::Make(true, 1, next_counter_++); }

  // Writes `bytes` through an upload and seals it as `id`.
  Status Upload(ObjectID id, const std::string& bytes) {
    auto up = store_->CreateUpload();
    if (!up.ok()) return up.status();
    Status s = store_->ReserveUpload(up->key, bytes.size());
    if (!s.ok()) {
      close(up->fd);
      store_->DropUpload(up->key);
      return s;
    }
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t w = write(up->fd, bytes.data() + done, bytes.size() - done);
      if (w <= 0) {
        close(up->fd);
        return Status::FromErrno("write upload", errno);
      }
      done += static_cast<size_t>(w);
    }
    close(up->fd);
    return store_->SealUpload(up->key, id, bytes.size());
  }

  // Opens the blob, reads all of it, closes it.
  Result<std::string> ReadBlob(ObjectID id) {
    auto fd = store_->OpenBlob(id);
    if (!fd.ok()) return fd.status();
    std::string out;
    char buf[65536];
    ssize_t n;
    off_t off = 0;
    while ((n = pread(*fd, buf, sizeof buf, off)) > 0) {
      out.append(buf, static_cast<size_t>(n));
      off += n;
    }
    close(*fd);
    store_->CloseBlob(id);
    return out;
  }

  // ReadBlob's bytes, or "<error>" in their place (to compare with the expected bytes).
  std::string ReadOrError(ObjectID id) {
    auto got = ReadBlob(id);
    return got.ok() ? *got : "<" + got.status().ToString() + ">";
  }

  // The durable payloads, read with the store closed.
  std::map<ObjectID, uint64_t> DurableOnDisk() {
    store_.reset();
    auto db = StateDb::Open(opts_.state, false);
    EXPECT_TRUE(db.ok()) << db.status().ToString();
    if (!db.ok()) return {};
    auto list = (*db)->ListDurable();
    EXPECT_TRUE(list.ok());
    return std::map<ObjectID, uint64_t>(list->begin(), list->end());
  }

  void WipeArenaBlobs() {
    for (auto& e : std::filesystem::directory_iterator(opts_.arena + "/blobs")) {
      std::filesystem::remove(e.path());
    }
  }

  TempDir tmp_{"vy-store-test"};
  const std::string root_ = tmp_.path();
  StoreOptions opts_;
  std::unique_ptr<Store> store_;
  uint64_t next_counter_ = 1;
};

}  // namespace vineyard
