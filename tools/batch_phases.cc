// The daemon's CPU per phase of a batch seal without FUSE (README "Per-object cost",
// the third round of `put`): ParseBatch of a captured new/<x>.batch, then
// ObjectTable::CreateBatch on a real StateDb (RocksDB in a temp dir), with the journal
// commit timed apart. Not part of the build; against a build's libraries:
//   g++ -std=c++17 -O2 -g -I. tools/batch_phases.cc build/libvy_store.a build/libvy_meta.a \
//       -lrocksdb -lzmq -lpthread -o /tmp/batch_phases
//   GLIBC_TUNABLES=glibc.malloc.hugetlb=1 /tmp/batch_phases FILE.batch [ROUNDS]
// (the daemon runs with that tunable, README "Memory"). A .batch file of the bench's
// values: a Client whose _create_file writes its bytes to a file.
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "meta/batch.h"
#include "meta/object_table.h"
#include "store/state_db.h"

using namespace vineyard;

static long CpuUs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

struct TimedJournal : Journal {
  Journal* inner;
  long commit_us = 0, encode_us = 0;
  explicit TimedJournal(Journal* j) : inner(j) {}
  Status Commit(const JournalBatch& b) override {
    long t0 = CpuUs();
    size_t bytes = 0;
    for (auto& r : b.put_objects) bytes += EncodeRecord(r).size();
    long t1 = CpuUs();
    Status s = inner->Commit(b);
    long t2 = CpuUs();
    encode_us += t1 - t0;
    commit_us += t2 - t1;
    (void)bytes;
    return s;
  }
  Status SaveIdLimit(uint64_t l) override { return inner->SaveIdLimit(l); }
  Status Load(Contents* c) override { return inner->Load(c); }
};

static long Median(std::vector<long> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  std::ifstream f(argv[1], std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string all = ss.str();
  size_t nul = all.find('\0');
  std::string manifest = all.substr(0, nul);
  uint64_t payload = all.size() - nul - 1;
  int rounds = argc > 2 ? atoi(argv[2]) : 9;
  char dir[] = "/tmp/batch_phases.XXXXXX";
  if (!mkdtemp(dir)) return 1;
  auto db = StateDb::Open(dir, false);
  if (!db.ok()) { fprintf(stderr, "%s\n", db.status().message().c_str()); return 1; }
  TimedJournal tj(db->get());
  ObjectTable table(1, &tj);
  std::vector<std::string> warn;
  if (!table.Load(&warn).ok()) return 1;
  std::vector<long> parse, create, commit, encode;
  for (int r = 0; r < rounds; ++r) {
    long t0 = CpuUs();
    auto b = ParseBatch(manifest, payload, [&](const std::vector<bool>& blob) {
      std::vector<ObjectID> ids;
      for (bool x : blob) ids.push_back(*table.NewId(x));
      return Result<std::vector<ObjectID>>(std::move(ids));
    });
    long t1 = CpuUs();
    if (!b.ok()) { fprintf(stderr, "%s\n", b.status().message().c_str()); return 1; }
    tj.commit_us = tj.encode_us = 0;  // the wrapper's own encode is subtracted below
    long t2 = CpuUs();
    auto root = table.CreateBatch(*b, Owner{0, 0});
    long t3 = CpuUs();
    if (!root.ok()) { fprintf(stderr, "%s\n", root.status().message().c_str()); return 1; }
    parse.push_back(t1 - t0);
    create.push_back(t3 - t2 - tj.encode_us);
    commit.push_back(tj.commit_us);
    encode.push_back(tj.encode_us);
  }
  printf("%s: manifest %zu bytes, median of %d: parse %ld us, records %ld us "
         "(journal commit %ld us incl. encode; encode alone %ld us)\n",
         argv[1], manifest.size(), rounds, Median(parse), Median(create), Median(commit),
         Median(encode));
  std::string rm = std::string("rm -rf ") + dir;
  return system(rm.c_str()) == 0 ? 0 : 1;
}
