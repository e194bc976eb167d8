// The seal invariant of DESIGN.md §4 on a real mount: an upload is sealed only when no
// process can write it any more, whoever holds it and however (a descriptor shared
// with a forked child, a mapping kept past close(), another user's read-only open),
// and from the seal on its bytes, in memory and in the durable copy, never change.
// Each case runs with passthrough (writes bypass the daemon) and without it.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include "mount_fixture.h"

namespace vyit {
namespace {

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool WriteAll(int fd, const std::string& s) {
  for (size_t done = 0; done < s.size();) {
    ssize_t n = write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// durability=sync: the durable copy is written by the seal, so a reboot right after
// the link appears shows exactly what the seal took.
class Seal : public MountTest, public ::testing::WithParamInterface<const char*> {
 protected:
  std::string DefaultOptions() const override {
    return std::string("durability=sync,passthrough=") + GetParam();
  }
  // Unmount cleanly, drop the arena (a reboot), mount again: bytes come from RocksDB.
  void RebootCleanly() {
    Unmount();
    WipeArena();
    ASSERT_TRUE(Remount());
  }
};

INSTANTIATE_TEST_SUITE_P(Passthrough, Seal, ::testing::Values("auto", "off"));

// Issue 14, finding 1: `exec 3>new/x; printf part1- >&3; /bin/true; printf part2 >&3`.
TEST_P(Seal, AForkedChildClosingTheSharedDescriptorDoesNotSeal) {
  const std::string path = Path("new/x");
  int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_TRUE(WriteAll(fd, "part1-"));
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fd);  // FLUSH from another process: not the last reference
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(IsRegularFile(path)) << "sealed when a child closed its copy: " << ReadLink(path);
  ASSERT_TRUE(WriteAll(fd, "part2")) << "a write after the child's exit failed: "
                                     << strerror(errno);
  ASSERT_EQ(close(fd), 0) << strerror(errno);
  std::string id = LinkedId("new/x");
  ASSERT_TRUE(IsBlobId(id)) << "not sealed after the last close";
  EXPECT_EQ(ReadAll(ObjPath(id, "data")), "part1-part2");
  RebootCleanly();
  EXPECT_EQ(ChildRead(ObjPath(id, "data")), "part1-part2") << "the durable copy differs";
}

// The child keeps writing after the parent closed: the seal waits for the child.
TEST_P(Seal, TheLastWriterIsTheChildWhenItClosesLast) {
  const std::string path = Path("new/y");
  int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_TRUE(WriteAll(fd, "parent-"));
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(go[1]);
    char c;
    if (read(go[0], &c, 1) != 1) _exit(2);
    _exit(WriteAll(fd, "child") && close(fd) == 0 ? 0 : 1);
  }
  close(go[0]);
  ASSERT_EQ(close(fd), 0) << strerror(errno);
  EXPECT_TRUE(IsRegularFile(path)) << "sealed while the child still holds the file";
  ASSERT_EQ(write(go[1], "g", 1), 1);
  close(go[1]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child's write failed";
  std::string id = LinkedId("new/y");
  ASSERT_TRUE(IsBlobId(id));
  EXPECT_EQ(ReadAll(ObjPath(id, "data")), "parent-child");
  RebootCleanly();
  EXPECT_EQ(ChildRead(ObjPath(id, "data")), "parent-child");
}

// Issue 14, finding 1 (`cat new/x`, also as uid 65534): a reader's close never seals.
TEST_P(Seal, AnotherUsersReadOnlyOpenNeverSeals) {
  const std::string path = Path("new/r");
  int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_TRUE(WriteAll(fd, "abc"));
  for (uid_t uid : {uid_t{65534}, getuid()}) {
    int rc = RunAs(uid, [&] {
      int r = open(path.c_str(), O_RDONLY);
      if (r < 0) return errno;
      char buf[8];
      ssize_t n = read(r, buf, sizeof buf);
      close(r);
      return n == 3 ? 0 : EIO;
    });
    EXPECT_EQ(rc, 0) << "uid " << uid << " could not read the upload";
    EXPECT_TRUE(IsRegularFile(path)) << "uid " << uid << "'s close sealed the upload";
  }
  ASSERT_TRUE(WriteAll(fd, "def"));
  ASSERT_EQ(close(fd), 0);
  std::string id = LinkedId("new/r");
  ASSERT_TRUE(IsBlobId(id));
  EXPECT_EQ(ReadAll(ObjPath(id, "data")), "abcdef");
}

// Issue 14, finding 2: a MAP_SHARED mapping kept past close() holds the seal off until
// munmap; the stores made through it after close() are in the object and its copy.
TEST_P(Seal, AWritableMappingKeptPastCloseHoldsTheSealUntilMunmap) {
  const std::string path = Path("new/m");
  const size_t len = 3 * 4096 + 17;
  int fd = open(path.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0644);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(ftruncate(fd, static_cast<off_t>(len)), 0);
  auto* p = static_cast<char*>(mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  ASSERT_NE(p, MAP_FAILED) << strerror(errno);
  std::memset(p, 'a', len);
  ASSERT_EQ(close(fd), 0) << strerror(errno);
  EXPECT_TRUE(IsRegularFile(path)) << "sealed while a writable mapping exists";
  std::memset(p + 4096, 'b', 4096);  // after close(), before munmap()
  EXPECT_TRUE(IsRegularFile(path));
  if (std::string(GetParam()) == "auto") {
    // Passthrough maps the backing file: the kernel released the FUSE file at close(),
    // and the daemon waits for the mapping's IN_CLOSE_WRITE.
    EXPECT_EQ(ReadStatus()["objects"]["uploads_awaiting_seal"], 1);
  }
  ASSERT_EQ(munmap(p, len), 0);
  std::string id;
  ASSERT_TRUE(PollUntil([&] { return !(id = LinkedId("new/m")).empty(); }, 5000))
      << "not sealed after munmap";
  std::string want(len, 'a');
  std::memset(&want[4096], 'b', 4096);
  EXPECT_TRUE(ReadAll(ObjPath(id, "data")) == want);
  RebootCleanly();
  EXPECT_TRUE(ChildRead(ObjPath(id, "data")) == want) << "the durable copy differs";
}

// A sealed object cannot be written by any path: its data file refuses writable
// opens (root included), and its arena file lost its write bits.
TEST_P(Seal, NoPathWritesASealedObject) {
  std::string id = WriteNew("s", "sealed");
  ASSERT_TRUE(IsBlobId(id));
  for (int flags : {O_WRONLY, O_RDWR, O_RDONLY | O_TRUNC, O_WRONLY | O_APPEND}) {
    int fd = open(ObjPath(id, "data").c_str(), flags);
    EXPECT_LT(fd, 0) << "flags " << flags;
    if (fd >= 0) close(fd);
  }
  int fd = open(ObjPath(id, "data").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  void* p = mmap(nullptr, 6, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  EXPECT_EQ(p, MAP_FAILED) << "a writable shared mapping of a sealed object";
  if (p != MAP_FAILED) munmap(p, 6);
  close(fd);
  EXPECT_EQ(truncate(ObjPath(id, "data").c_str(), 0), -1);
  EXPECT_EQ(ReadAll(ObjPath(id, "data")), "sealed");
}

// close() cannot wait for a seal that follows it: a failure it could not see is in
// user.vineyard.error and user.vineyard.errno, and the file stays as written.
TEST_P(Seal, ASealThatFailsAfterCloseSaysWhyInTheUploadsXattrs) {
  ASSERT_EQ(TryWriteNew("bad.npy", "not an npy file"), EIO);
  const std::string path = Path("new/bad.npy");
  EXPECT_TRUE(IsRegularFile(path));
  EXPECT_EQ(SealErrno(path), EIO);
  EXPECT_EQ(ReadAll(path), "not an npy file");
}

// The stress case of issue 14: writers, forked children sharing their descriptors,
// readers of other users' uploads, mappings kept past close(), kill -9 of the daemon
// and remounts with the arena wiped. Every acknowledged object (its link seen after
// all of its writers let go) is checked byte for byte against what this process
// expects, which it keeps outside the mount.
class SealStress : public MountTest {
 protected:
  std::string DefaultOptions() const override { return "durability=sync"; }
};

// One writer of the stress test, in its own process: writes new/<name> in the way
// `kind` says and returns the bytes the object must hold. Exits non-zero on failure.
std::string StressWrite(const std::string& path, int kind, const std::string& a,
                        const std::string& b) {
  switch (kind) {
    case 0: {  // a plain writer, with a reader of another user meanwhile
      int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
      if (fd < 0 || !WriteAll(fd, a)) _exit(10);
      pid_t r = fork();
      if (r == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0) _exit(1);
        int rd = open(path.c_str(), O_RDONLY);
        if (rd >= 0) close(rd);
        _exit(0);
      }
      waitpid(r, nullptr, 0);
      if (!WriteAll(fd, b) || close(fd) != 0) _exit(11);
      return a + b;
    }
    case 1: {  // a child inherits the descriptor and exits in the middle
      int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
      if (fd < 0 || !WriteAll(fd, a)) _exit(12);
      pid_t c = fork();
      if (c == 0) _exit(0);
      waitpid(c, nullptr, 0);
      if (!WriteAll(fd, b) || close(fd) != 0) _exit(13);
      return a + b;
    }
    case 2: {  // a child writes the second part after the parent closed
      int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
      if (fd < 0 || !WriteAll(fd, a)) _exit(14);
      pid_t c = fork();
      if (c == 0) {
        usleep(2000);
        _exit(WriteAll(fd, b) && close(fd) == 0 ? 0 : 1);
      }
      if (close(fd) != 0) _exit(15);
      int st = 0;
      waitpid(c, &st, 0);
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) _exit(16);
      return a + b;
    }
    default: {  // a mapping kept past close(), written after it
      int fd = open(path.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0644);
      if (fd < 0 || ftruncate(fd, static_cast<off_t>(a.size())) != 0) _exit(17);
      auto* p = static_cast<char*>(
          mmap(nullptr, a.size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
      if (p == MAP_FAILED) _exit(18);
      std::memcpy(p, b.data(), std::min(a.size(), b.size()));
      if (close(fd) != 0) _exit(19);
      std::memcpy(p, a.data(), a.size());
      if (munmap(p, a.size()) != 0) _exit(20);
      return a;
    }
  }
}

TEST_F(SealStress, EveryAcknowledgedObjectSurvivesForksMappingsAndKillNine) {
  std::map<std::string, std::string> expected;  // id -> bytes, kept outside the mount
  int serial = 0;
  for (int cycle = 0; cycle < 3; ++cycle) {
    for (int round = 0; round < 12; ++round) {
      // Four writers at once, one of each kind, each in its own process.
      std::map<pid_t, std::pair<std::string, std::string>> workers;  // pid -> name, bytes
      for (int kind = 0; kind < 4; ++kind) {
        const std::string name = "u" + std::to_string(serial++);
        std::mt19937_64 rng(serial);
        const std::string a = RandomBytes(1 + rng() % 70000, rng());
        const std::string b = RandomBytes(1 + rng() % 5000, rng());
        const std::string want = kind == 3 ? a : a + b;
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
          StressWrite(Path("new/" + name), kind, a, b);
          _exit(0);
        }
        workers[pid] = {name, want};
      }
      for (auto& [pid, w] : workers) {
        int st = 0;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0)
            << w.first << ": writer failed with " << WEXITSTATUS(st);
        std::string id;
        // The writer is gone: the next lookup sees the link (the mapping case may
        // still be on its way through IN_CLOSE_WRITE).
        ASSERT_TRUE(PollUntil([&] { return !(id = LinkedId("new/" + w.first)).empty(); }, 5000))
            << w.first << " was not sealed";
        ASSERT_TRUE(ReadAll(ObjPath(id, "data")) == w.second) << w.first << " " << id;
        expected[id] = w.second;
      }
    }
    Reboot();  // kill -9, then the arena is gone
    ASSERT_TRUE(Remount());
    for (auto& [id, bytes] : expected) {
      ASSERT_TRUE(ChildRead(ObjPath(id, "data")) == bytes)
          << id << " changed after kill -9 in cycle " << cycle;
    }
  }
  EXPECT_EQ(expected.size(), 144u);
}

}  // namespace
}  // namespace vyit
