// MountTest's file helpers (declared in mount_fixture.h): writing new/, reading files,
// links and directories, in this process or a child, and snapshots of the mount.
#include "mount_fixture.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "mount_fixture_internal.h"

namespace vyit {

// ---- file helpers ---------------------------------------------------------------

int MountTest::TryWriteNew(const std::string& name, const std::string& bytes, std::string* id) {
  const std::string path = Path("new/" + name);
  {
    auto no_fork = UploadWriteGuard();
    int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return errno;
    if (!WriteFull(fd, bytes.data(), bytes.size())) {
      int e = errno;
      close(fd);
      return e;
    }
    if (close(fd) != 0) return errno;
  }
  if (int e = SealErrno(path)) return e;
  if (id) {
    *id = LinkedId("new/" + name);
    if (id->empty()) return EPROTO;
  }
  return 0;
}

std::string MountTest::WriteNew(const std::string& name, const std::string& bytes) {
  std::string id;
  int e = TryWriteNew(name, bytes, &id);
  if (e != 0) {
    ADD_FAILURE() << "writing new/" << name << " (" << bytes.size() << " bytes): "
                  << (e == EPROTO ? "no link to an object after close()" : strerror(e));
    return {};
  }
  return id;
}

std::string MountTest::WriteNewMmap(const std::string& name, const std::string& bytes) {
  const std::string path = Path("new/" + name);
  int fd = open(path.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0644);
  if (fd < 0) {
    ADD_FAILURE() << "open " << path << ": " << strerror(errno);
    return {};
  }
  if (ftruncate(fd, static_cast<off_t>(bytes.size())) != 0) {
    ADD_FAILURE() << "ftruncate " << path << ": " << strerror(errno);
    close(fd);
    return {};
  }
  if (!bytes.empty()) {
    void* p = mmap(nullptr, bytes.size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      ADD_FAILURE() << "mmap " << path << ": " << strerror(errno);
      close(fd);
      return {};
    }
    std::memcpy(p, bytes.data(), bytes.size());
    if (munmap(p, bytes.size()) != 0) ADD_FAILURE() << "munmap: " << strerror(errno);
  }
  if (close(fd) != 0) {
    ADD_FAILURE() << "close " << path << ": " << strerror(errno);
    return {};
  }
  std::string id;
  if (!PollUntil([&] { return !(id = LinkedId("new/" + name)).empty(); }, 5000)) {
    ADD_FAILURE() << "new/" << name << " was not sealed within 5 s after munmap+close";
  }
  return id;
}

std::string MountTest::ReadAll(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    ADD_FAILURE() << "open " << path << ": " << strerror(errno);
    return {};
  }
  std::string s = Drain(fd);
  close(fd);
  return s;
}

// Runs `fn` (path -> bytes, errno in *ce) in a child; reports a failure as `how`.
static std::string ChildFetch(const char* how, const std::string& path,
                              const std::function<std::string(int*)>& fn, int* err) {
  int e = 0;
  std::string s = ChildTransfer(fn, &e);
  if (err) {
    *err = e;
  } else if (e != 0) {
    ADD_FAILURE() << "child " << how << " of " << path << ": "
                  << (e < 0 ? "child died" : strerror(e));
  }
  return s;
}

std::string MountTest::ChildRead(const std::string& path, int* err) {
  return ChildFetch(
      "read", path,
      [&](int* ce) {
        int fd = open(path.c_str(), O_RDONLY);
        if (fd < 0) {
          *ce = errno;
          return std::string();
        }
        std::string out = Drain(fd, ce);
        close(fd);
        return out;
      },
      err);
}

std::string MountTest::ChildMmap(const std::string& path, int* err) {
  return ChildFetch(
      "mmap", path,
      [&](int* ce) {
        int fd = open(path.c_str(), O_RDONLY);
        if (fd < 0) {
          *ce = errno;
          return std::string();
        }
        struct stat sb;
        std::string out;
        if (fstat(fd, &sb) != 0) {
          *ce = errno;
        } else if (sb.st_size > 0) {
          const size_t n = static_cast<size_t>(sb.st_size);
          void* p = mmap(nullptr, n, PROT_READ, MAP_SHARED, fd, 0);
          if (p == MAP_FAILED) {
            *ce = errno;
          } else {
            out.assign(static_cast<const char*>(p), n);
            munmap(p, n);
          }
        }
        close(fd);
        return out;
      },
      err);
}

std::string MountTest::ReadLink(const std::string& path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof buf);
  return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
}

std::string MountTest::LinkedId(const std::string& rel) {
  std::string target = ReadLink(Path(rel));
  const std::string prefix = "../objects/";
  if (target.rfind(prefix, 0) != 0) return {};
  std::string id = target.substr(prefix.size());
  return IsObjectId(id) ? id : std::string();
}

std::vector<std::string> ListDirectory(const std::string& path) {
  std::vector<std::string> out;
  DIR* d = opendir(path.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> MountTest::ListDir(const std::string& path) { return ListDirectory(path); }

int MountTest::RunAs(uid_t uid, const std::function<int()>& fn) {
  pid_t pid = ForkOutsideUploads();
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0) _exit(255);
    _exit(fn() & 0xff);
  }
  int st = WaitWithTimeout(pid, 30000);
  int code = DecodeStatus(st);
  return code == 255 || code >= 128 || code < 0 ? -1 : code;
}

int MountTest::InChild(const std::function<int()>& fn) {
  pid_t pid = ForkOutsideUploads();
  if (pid == 0) _exit(fn() & 0xff);
  int code = DecodeStatus(WaitWithTimeout(pid, 30000));
  return code >= 128 || code < 0 ? -1 : code;
}

nlohmann::json MountTest::ReadStatus() {
  std::string s = ReadAll(Path("status.json"));
  auto j = nlohmann::json::parse(s, nullptr, false);
  if (j.is_discarded()) ADD_FAILURE() << "status.json is not JSON:\n" << s;
  return j;
}

nlohmann::json MountTest::ReadMeta(const std::string& id) {
  std::string s = ReadAll(ObjPath(id, "meta.json"));
  auto j = nlohmann::json::parse(s, nullptr, false);
  if (j.is_discarded()) ADD_FAILURE() << "objects/" << id << "/meta.json is not JSON:\n" << s;
  return j;
}

MountTest::Snapshot MountTest::TakeSnapshot() {
  Snapshot snap;
  for (auto& id : ListDir(Path("objects"))) {
    std::string data;
    if (IsBlobId(id)) data = ReadAll(ObjPath(id, "data"));
    snap[id] = {ReadAll(ObjPath(id, "meta.json")), data};
  }
  return snap;
}

void MountTest::ExpectUntouched(const Snapshot& before, const std::set<std::string>& extra) {
  std::set<std::string> expected = extra;
  for (auto& [id, v] : before) expected.insert(id);
  auto now = ListDir(Path("objects"));
  EXPECT_EQ(std::set<std::string>(now.begin(), now.end()), expected)
      << "objects/ changed beyond the expected set";
  for (auto& [id, v] : before) {
    int e = 0;
    std::string meta = ChildRead(ObjPath(id, "meta.json"), &e);
    EXPECT_EQ(e, 0) << id << " meta.json: " << strerror(e);
    EXPECT_EQ(meta, v.first) << id << " meta.json changed";
    if (IsBlobId(id)) {
      std::string data = ChildRead(ObjPath(id, "data"), &e);
      EXPECT_EQ(e, 0) << id << " data: " << strerror(e);
      EXPECT_TRUE(data == v.second)
          << id << " data changed (" << data.size() << " vs " << v.second.size() << " bytes)";
    }
  }
}

}  // namespace vyit
