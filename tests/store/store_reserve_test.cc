// Tests store/reserve.cc (reserve=) and CopyIntoFill through a real Store.
#include "store/store.h"

#include "store_fixture.h"

namespace vineyard {
namespace {

// ---- reserve= (store/reserve.cc) ----

constexpr uint64_t kMiB = 1024 * kKiB;

// Polls `pred` for up to 10 s.
template <typename Pred>
bool Eventually(Pred pred) {
  for (int i = 0; i < 1000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

// Writes `bytes` over a CreateFill file (as a fetch does) and seals it as `id`.
Status FillAndSeal(Store* store, ObjectID id, const std::string& bytes) {
  auto up = store->CreateFill(bytes.size());
  if (!up.ok()) return up.status();
  Status s = AppendSmallPages(up->fd, bytes.data(), bytes.size(), 0);
  struct stat st;
  fstat(up->fd, &st);
  close(up->fd);
  if (s.ok() && static_cast<uint64_t>(st.st_size) != bytes.size()) {
    s = Status::IOError("fill file has " + std::to_string(st.st_size) + " bytes");
  }
  if (s.ok()) s = store->SealUpload(up->key, id, bytes.size());
  if (!s.ok()) store->DropUpload(up->key);
  return s;
}

TEST_F(StoreTest, ReserveIsWrittenAheadTakenByALargeFillAndWrittenAgain) {
  opts_.reserve = 8 * kMiB;
  Open(Durability::kNone, 64 * kMiB);
  store_->Recover({});
  ASSERT_TRUE(Eventually([&] { return store_->stats().reserve_ready == 8 * kMiB; }));
  EXPECT_TRUE(FileExists(opts_.arena + "/reserve"));
  EXPECT_EQ(store_->stats().used, 8 * kMiB) << "the reserve is charged like a payload";

  // Smaller than the reserve: overwritten from the start, the tail dropped.
  ObjectID a = NextId();
  std::string bytes_a = Bytes(3 * kMiB + 5, 1);
  ASSERT_TRUE(FillAndSeal(store_.get(), a, bytes_a).ok());
  EXPECT_EQ(store_->stats().reserve_takes, 1u);
  auto got = ReadBlob(a);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == bytes_a);

  // Written again; a payload larger than the reserve takes it and grows past it.
  ASSERT_TRUE(Eventually([&] { return store_->stats().reserve_ready == 8 * kMiB; }));
  ObjectID b = NextId();
  std::string bytes_b = Bytes(11 * kMiB, 2);
  ASSERT_TRUE(FillAndSeal(store_.get(), b, bytes_b).ok());
  EXPECT_EQ(store_->stats().reserve_takes, 2u);
  got = ReadBlob(b);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(*got == bytes_b);

  // Below 2 MiB a fill is a new file: the reserve stays.
  ASSERT_TRUE(Eventually([&] { return store_->stats().reserve_ready == 8 * kMiB; }));
  ObjectID c = NextId();
  ASSERT_TRUE(FillAndSeal(store_.get(), c, Bytes(100 * kKiB, 3)).ok());
  EXPECT_EQ(store_->stats().reserve_takes, 2u);
  EXPECT_EQ(store_->stats().reserve_ready, 8 * kMiB);

  // Closing the store removes it.
  store_.reset();
  EXPECT_FALSE(FileExists(opts_.arena + "/reserve"));
}

TEST_F(StoreTest, TheNextReserveWaitsUntilThePayloadInTheLastOneIsInPlace) {
  opts_.reserve = 8 * kMiB;
  Open(Durability::kNone, 64 * kMiB);
  store_->Recover({});
  ASSERT_TRUE(Eventually([&] { return store_->stats().reserve_ready == 8 * kMiB; }));
  auto up = store_->CreateFill(6 * kMiB);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_EQ(up->backed, 6 * kMiB) << "the reserve's pages cover the whole payload";
  // While the payload is being written the reserver leaves the cores to it.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(store_->stats().reserve_ready, 0u);
  EXPECT_FALSE(FileExists(opts_.arena + "/reserve.filling"));
  std::string bytes = Bytes(6 * kMiB, 4);
  ASSERT_TRUE(AppendSmallPages(up->fd, bytes.data(), bytes.size(), 0).ok());
  close(up->fd);
  ObjectID a = NextId();
  ASSERT_TRUE(store_->SealUpload(up->key, a, bytes.size()).ok());
  EXPECT_TRUE(Eventually([&] { return store_->stats().reserve_ready == 8 * kMiB; }))
      << "sealed: the next reserve is written";
  // A payload larger than the reserve is backed only as far as the reserve goes; a
  // dropped one lets the reserver go on as well.
  up = store_->CreateFill(11 * kMiB);
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(up->backed, 8 * kMiB);
  close(up->fd);
  store_->DropUpload(up->key);
  EXPECT_TRUE(Eventually([&] { return store_->stats().reserve_ready == 8 * kMiB; }));
  // Below 2 MiB nothing is taken, so nothing is backed.
  up = store_->CreateFill(kMiB);
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(up->backed, 0u);
  close(up->fd);
  store_->DropUpload(up->key);
}

// CopyIntoFill: the part over existing pages through mappings (two threads from 32
// MiB), the rest with copy_file_range; every split gives the same bytes and size.
TEST(CopyIntoFillTest, CopiesTheRangeExactlyWhateverPartIsBacked) {
  TempDir dir("vy-copy");
  const uint64_t kHeader = 128;  // an .npy header: the source range is not page-aligned
  const uint64_t len = 40 * kMiB + 5;
  std::string src_bytes = Bytes(kHeader + len + 77, 9);
  std::string src_path = dir.path() + "/src";
  int src = open(src_path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(src, 0);
  ASSERT_EQ(pwrite(src, src_bytes.data(), src_bytes.size(), 0),
            static_cast<ssize_t>(src_bytes.size()));
  for (uint64_t backed : {uint64_t{0}, 3 * kMiB, 33 * kMiB, len}) {
    std::string dst_path = dir.path() + "/dst" + std::to_string(backed);
    int dst = open(dst_path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(dst, 0);
    // As CreateFill leaves it: `backed` bytes of zeros already written.
    std::string zeros(backed, '\0');
    ASSERT_EQ(pwrite(dst, zeros.data(), zeros.size(), 0), static_cast<ssize_t>(backed));
    Status s = CopyIntoFill(src, kHeader, dst, len, backed);
    ASSERT_TRUE(s.ok()) << "backed " << backed << ": " << s.ToString();
    struct stat st;
    ASSERT_EQ(fstat(dst, &st), 0);
    EXPECT_EQ(static_cast<uint64_t>(st.st_size), len) << "backed " << backed;
    std::string got(len, '\0');
    ASSERT_EQ(pread(dst, got.data(), len, 0), static_cast<ssize_t>(len));
    EXPECT_TRUE(got == src_bytes.substr(kHeader, len)) << "backed " << backed;
    close(dst);
  }
  close(src);
}

TEST_F(StoreTest, ReserveGoesBeforeAnyPayloadWhenRoomIsNeeded) {
  opts_.reserve = 8 * kMiB;
  Open(Durability::kSync, 16 * kMiB);
  store_->Recover({});
  ASSERT_TRUE(Eventually([&] { return store_->stats().reserve_ready == 8 * kMiB; }));
  ObjectID a = NextId(), b = NextId();
  ASSERT_TRUE(Upload(a, Bytes(6 * kMiB, 1)).ok());  // fits beside the reserve
  ASSERT_TRUE(Upload(b, Bytes(6 * kMiB, 2)).ok());  // does not: the reserve goes
  auto st = store_->stats();
  EXPECT_EQ(st.evictions, 0u) << "no payload was evicted for room the reserve held";
  EXPECT_TRUE(store_->IsResident(a));
  EXPECT_TRUE(store_->IsResident(b));
  EXPECT_EQ(st.reserve_ready, 0u);
  EXPECT_FALSE(FileExists(opts_.arena + "/reserve"));
  // And no new reserve evicts them: there is no room for one.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  st = store_->stats();
  EXPECT_EQ(st.reserve_ready, 0u);
  EXPECT_EQ(st.evictions, 0u);
  EXPECT_LE(st.used, st.capacity);
}

TEST_F(StoreTest, ReserveOfMoreThanHalfTheArenaIsRefused) {
  opts_.reserve = 9 * kMiB;
  opts_.size = 16 * kMiB;
  InstanceId instance = 1;
  auto s = Store::Open(opts_, &instance);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kInvalidArgument) << s.status().ToString();
  EXPECT_NE(s.status().message().find("half of size"), std::string::npos);
}

TEST_F(StoreTest, ReloadFromRocksDbGoesOverTheReserve) {
  opts_.reserve = 4 * kMiB;
  Open(Durability::kSync, 16 * kMiB);
  store_->Recover({});
  ObjectID a = NextId(), b = NextId();
  std::string bytes_a = Bytes(6 * kMiB, 7);
  ASSERT_TRUE(Upload(a, bytes_a).ok());
  ASSERT_TRUE(Upload(b, Bytes(6 * kMiB, 8)).ok());  // the reserve makes room
  ASSERT_TRUE(Upload(NextId(), Bytes(6 * kMiB, 9)).ok());  // evicts a (durable)
  ASSERT_FALSE(store_->IsResident(a));
  // Room for a reserve again once b is gone.
  store_->DeleteBlob(b);
  ASSERT_TRUE(Eventually([&] { return store_->stats().reserve_ready == 4 * kMiB; }));
  auto got = ReadBlob(a);  // reloads a
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == bytes_a);
  EXPECT_EQ(store_->stats().reserve_takes, 1u);
  EXPECT_GE(store_->stats().reloads, 1u);
}

}  // namespace
}  // namespace vineyard
