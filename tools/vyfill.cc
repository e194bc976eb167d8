// vyfill: fills an unmounted store with blobs, fast, for the scale benchmark
// (tools/bench_objects.py --only scale --fill direct). It makes each blob the way the
// daemon's seal does (store/ and meta/, no FUSE): an upload file in the arena's
// staging/, the payload written into it, Store::SealUpload (rename into blobs/,
// queued for the durable copy under durability=async), ObjectTable::AddBlob (one
// journal commit; with BATCH > 1, ObjectTable::AddBlobs commits BATCH records at once,
// the same records). So the state a remount loads is the one objects created through
// new/ leave; only the FUSE round trips of the create are skipped.
//
//   vyfill ARENA STATE N BYTES SIZE [DURABILITY [BATCH]]
//       adds N blobs of BYTES bytes ('v') to the store in ARENA (an existing directory,
//       e.g. the arena tmpfs a daemon left mounted; as root a tmpfs of SIZE bytes is
//       mounted there if none is) and STATE (RocksDB), as uid/gid 0,
//       then waits until every payload is durable (async, the default; or sync, none).
//       Prints {"objects": N, "seconds": S, "per_s": R} on stdout.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "meta/log.h"
#include "meta/object_table.h"
#include "store/store.h"

using namespace vineyard;

namespace {

int Fail(const std::string& what) {
  std::fprintf(stderr, "vyfill: %s\n", what.c_str());
  return 1;
}

// One blob the way the seal makes it: staging file, payload, Store::SealUpload.
Result<ObjectID> SealOne(Store* store, ObjectTable* table, const std::string& payload) {
  const uint64_t bytes = payload.size();
  auto up = store->CreateUpload();
  if (!up.ok()) return up.status();
  Status s = store->ReserveUpload(up->key, bytes);
  if (s.ok() && pwrite(up->fd, payload.data(), bytes, 0) != static_cast<ssize_t>(bytes))
    s = Status::FromErrno("write upload", errno);
  close(up->fd);
  auto id = s.ok() ? table->NewId(/*blob=*/true) : Result<ObjectID>(s);
  if (id.ok()) s = store->SealUpload(up->key, *id, bytes);
  if (!id.ok() || !s.ok()) {
    store->DropUpload(up->key);
    return id.ok() ? s : id.status();
  }
  return *id;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6 || argc > 8) {
    std::fprintf(stderr, "usage: vyfill ARENA STATE N BYTES SIZE [none|async|sync [BATCH]]\n");
    return 2;
  }
  StoreOptions opts;
  opts.arena = argv[1];
  opts.state = argv[2];
  const uint64_t n = std::strtoull(argv[3], nullptr, 10);
  const uint64_t bytes = std::strtoull(argv[4], nullptr, 10);
  opts.size = std::strtoull(argv[5], nullptr, 10);
  const std::string durability = argc >= 7 ? argv[6] : "async";
  const uint64_t batch = argc == 8 ? std::strtoull(argv[7], nullptr, 10) : 1;
  if (durability == "none") {
    opts.durability = Durability::kNone;
  } else if (durability == "sync") {
    opts.durability = Durability::kSync;
  } else if (durability != "async") {
    return Fail("durability must be none, async or sync");
  }
  if (bytes == 0 || bytes > (64u << 20)) return Fail("BYTES must be 1..64 MiB");
  if (batch == 0 || batch > 100000) return Fail("BATCH must be 1..100000");
  InstanceId instance = 0;
  auto store = Store::Open(opts, &instance);
  if (!store.ok()) return Fail(store.status().ToString());
  (*store)->StartRecoveryScan();  // overlaps the table's load
  ObjectTable table(instance, (*store)->journal());
  std::vector<std::string> warnings;
  Status s = table.Load(&warnings);
  if (!s.ok()) return Fail("load: " + s.ToString());
  // As the daemon does before it serves: recover what the arena and RocksDB hold.
  std::vector<std::pair<ObjectID, uint64_t>> blobs;
  table.ForEach([&](const ObjectRecord& r) {
    if (r.is_blob() && r.id.instance() == instance) blobs.emplace_back(r.id, r.size);
  });
  auto lost = (*store)->Recover(blobs);
  if (!lost.empty()) return Fail(std::to_string(lost.size()) + " blobs lost in recovery");

  const std::string payload(bytes, 'v');
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::pair<ObjectID, uint64_t>> sealed;
  for (uint64_t i = 0; i < n; ++i) {
    auto id = SealOne(store->get(), &table, payload);
    if (!id.ok()) return Fail(id.status().ToString());
    sealed.emplace_back(*id, bytes);
    if (sealed.size() == batch || i + 1 == n) {
      auto added = table.AddBlobs(sealed, Owner{0, 0});
      if (!added.ok()) return Fail("add: " + added.status().ToString());
      sealed.clear();
    }
  }
  // The daemon's next mount must find every payload where a quiet daemon leaves it.
  while ((*store)->stats().pending_durable > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("{\"objects\": %llu, \"seconds\": %.3f, \"per_s\": %.1f}\n",
              static_cast<unsigned long long>(n), secs, n / secs);
  return 0;
}
