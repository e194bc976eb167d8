// vybench: the timed inner loops of the benchmark suite (tools/bench_zero_copy.py), in
// C++ so that the figures measure system calls, not an interpreter. Each subcommand
// prints one JSON object on stdout.
//
//   vybench read FILE                 read() the whole file in 1 MiB reads: seconds
//   vybench write PATH BYTES          create PATH, 1 MiB writes, close(); if PATH is in a
//                                     vineyardfs new/, wait for the seal: seconds
//   vybench copy SRC DST              write SRC's bytes (from an mmap) to a new DST in
//                                     1 MiB writes, close(); seal as for write: seconds
//   vybench create DIR N BYTES PREFIX N files DIR/PREFIX<i> of BYTES each
//                                     (open+write+close): per second
//   vybench openmap FILE N            open+mmap+munmap+close of FILE, N times: median us
//   vybench stat DIR SUFFIX           stat(DIR/<entry>SUFFIX) for every entry, twice:
//                                     seconds of the second (warm) pass
//   vybench dropcache FILE            posix_fadvise(DONTNEED): drop FILE's page cache
//   vybench objects DIR N PAYLOAD PREFIX SUFFIX unlink|keep [IDS]
//                                     N times, as the Python client creates an object:
//                                     open(DIR/PREFIX<i>SUFFIX, O_CREAT|O_EXCL) + write of
//                                     the bytes of file PAYLOAD + close + readlink + (unlink
//                                     of the name, or keep it); readlink's target's last
//                                     component appended to file IDS, one a line. Prints
//                                     CLOCK_MONOTONIC start/end (t0, t1: comparable across
//                                     processes), per second, and how many names were links
//   vybench rmdirs LIST               rmdir() of every path in file LIST (one a line): per second
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "vybench: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

int Read(const char* path) {
  std::vector<char> buf(1 << 20);
  auto t = Clock::now();
  int fd = open(path, O_RDONLY);
  if (fd < 0) Die(path);
  uint64_t total = 0;
  for (ssize_t n; (n = read(fd, buf.data(), buf.size())) != 0;) {
    if (n < 0) Die("read");
    total += static_cast<uint64_t>(n);
  }
  close(fd);
  std::printf("{\"seconds\": %.6f, \"bytes\": %llu}\n", Since(t),
              static_cast<unsigned long long>(total));
  return 0;
}

int Write(const char* path, uint64_t bytes) {
  std::vector<char> buf(1 << 20, 'v');
  auto t = Clock::now();
  int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd < 0) Die(path);
  for (uint64_t done = 0; done < bytes;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), bytes - done));
    ssize_t w = write(fd, buf.data(), n);
    if (w < 0) Die("write");
    done += static_cast<uint64_t>(w);
  }
  if (close(fd) != 0) Die("close");
  char link[256];
  bool sealed = readlink(path, link, sizeof link) > 0;  // vineyardfs: new/<f> -> objects/<id>
  std::printf("{\"seconds\": %.6f, \"sealed\": %s}\n", Since(t), sealed ? "true" : "false");
  return 0;
}

int Copy(const char* src, const char* dst) {
  int in = open(src, O_RDONLY);
  if (in < 0) Die(src);
  struct stat st;
  if (fstat(in, &st) != 0) Die(src);
  const uint64_t bytes = static_cast<uint64_t>(st.st_size);
  auto* map = static_cast<const char*>(mmap(nullptr, bytes, PROT_READ, MAP_SHARED, in, 0));
  if (map == MAP_FAILED) Die("mmap");
  auto t = Clock::now();
  int fd = open(dst, O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd < 0) Die(dst);
  for (uint64_t done = 0; done < bytes;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(1 << 20, bytes - done));
    ssize_t w = write(fd, map + done, n);
    if (w < 0) Die("write");
    done += static_cast<uint64_t>(w);
  }
  if (close(fd) != 0) Die("close");
  char link[256];
  bool sealed = readlink(dst, link, sizeof link) > 0;
  std::printf("{\"seconds\": %.6f, \"sealed\": %s}\n", Since(t), sealed ? "true" : "false");
  munmap(const_cast<char*>(map), bytes);
  close(in);
  return 0;
}

int Create(const char* dir, int n, size_t bytes, const char* prefix) {
  std::string payload(bytes, 'v');
  auto t = Clock::now();
  for (int i = 0; i < n; ++i) {
    std::string path = std::string(dir) + "/" + prefix + std::to_string(i);
    int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0) Die(path);
    if (write(fd, payload.data(), payload.size()) != static_cast<ssize_t>(payload.size())) {
      Die("write");
    }
    if (close(fd) != 0) Die("close " + path);
  }
  double s = Since(t);
  std::printf("{\"seconds\": %.6f, \"per_second\": %.1f}\n", s, n / s);
  return 0;
}

int OpenMap(const char* path, int n) {
  std::vector<double> us;
  for (int i = 0; i < n; ++i) {
    auto t = Clock::now();
    int fd = open(path, O_RDONLY);
    if (fd < 0) Die(path);
    struct stat st;
    fstat(fd, &st);
    void* p = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) Die("mmap");
    munmap(p, static_cast<size_t>(st.st_size));
    close(fd);
    us.push_back(Since(t) * 1e6);
  }
  std::sort(us.begin(), us.end());
  std::printf("{\"median_us\": %.2f, \"p90_us\": %.2f}\n", us[us.size() / 2],
              us[us.size() * 9 / 10]);
  return 0;
}

int Stat(const char* dir, const char* suffix) {
  // Relative to DIR, so that both sides of a comparison walk the same components.
  if (chdir(dir) != 0) Die(dir);
  std::vector<std::string> paths;
  DIR* d = opendir(".");
  if (!d) Die(dir);
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') paths.push_back(std::string(e->d_name) + suffix);
  }
  closedir(d);
  struct stat st;
  double seconds = 0;
  for (int pass = 0; pass < 2; ++pass) {
    auto t = Clock::now();
    for (auto& p : paths) {
      if (stat(p.c_str(), &st) != 0) Die(p);
    }
    seconds = Since(t);
  }
  std::printf("{\"seconds\": %.6f, \"entries\": %zu}\n", seconds, paths.size());
  return 0;
}

int DropCache(const char* path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) Die(path);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
  std::printf("{}\n");
  return 0;
}

std::string Slurp(const char* path) {
  std::string out;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) Die(path);
  char buf[1 << 16];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) != 0;) {
    if (n < 0) Die(path);
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

double Monotonic() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

int Objects(const char* dir, int n, const char* payload_file, const char* prefix,
            const char* suffix, bool unlink_name, const char* ids_file) {
  const std::string payload = Slurp(payload_file);
  FILE* ids = nullptr;
  if (ids_file && !(ids = std::fopen(ids_file, "a"))) Die(ids_file);
  std::vector<std::string> targets;
  if (ids) targets.reserve(static_cast<size_t>(n));
  int links = 0;
  char link[4096];
  const double t0 = Monotonic();
  for (int i = 0; i < n; ++i) {
    std::string path = std::string(dir) + "/" + prefix + std::to_string(i) + suffix;
    int fd = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) Die(path);
    if (!payload.empty() &&
        write(fd, payload.data(), payload.size()) != static_cast<ssize_t>(payload.size())) {
      Die("write " + path);
    }
    if (close(fd) != 0) Die("close " + path);
    ssize_t len = readlink(path.c_str(), link, sizeof link - 1);
    if (len > 0) {
      ++links;
      if (ids) targets.emplace_back(link, static_cast<size_t>(len));
    }
    if (unlink_name && unlink(path.c_str()) != 0) Die("unlink " + path);
  }
  const double t1 = Monotonic();
  if (ids) {
    for (auto& t : targets) {
      auto slash = t.rfind('/');
      std::fprintf(ids, "%s\n", slash == std::string::npos ? t.c_str() : t.c_str() + slash + 1);
    }
    std::fclose(ids);
  }
  std::printf(
      "{\"t0\": %.9f, \"t1\": %.9f, \"seconds\": %.6f, \"per_second\": %.1f, "
      "\"links\": %d}\n",
      t0, t1, t1 - t0, n / (t1 - t0), links);
  return 0;
}

int Rmdirs(const char* list) {
  std::vector<std::string> paths;
  std::string all = Slurp(list);
  for (size_t pos = 0; pos < all.size();) {
    size_t end = all.find('\n', pos);
    if (end == std::string::npos) end = all.size();
    if (end > pos) paths.push_back(all.substr(pos, end - pos));
    pos = end + 1;
  }
  auto t = Clock::now();
  for (auto& p : paths) {
    if (rmdir(p.c_str()) != 0) Die("rmdir " + p);
  }
  double s = Since(t);
  std::printf("{\"seconds\": %.6f, \"per_second\": %.1f, \"count\": %zu}\n", s,
              static_cast<double>(paths.size()) / s, paths.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "read" && argc == 3) return Read(argv[2]);
  if (cmd == "copy" && argc == 4) return Copy(argv[2], argv[3]);
  if (cmd == "write" && argc == 4) return Write(argv[2], std::strtoull(argv[3], nullptr, 10));
  if (cmd == "create" && argc == 6) {
    return Create(argv[2], std::atoi(argv[3]), std::strtoull(argv[4], nullptr, 10), argv[5]);
  }
  if (cmd == "openmap" && argc == 4) return OpenMap(argv[2], std::atoi(argv[3]));
  if (cmd == "stat" && argc == 4) return Stat(argv[2], argv[3]);
  if (cmd == "dropcache" && argc == 3) return DropCache(argv[2]);
  if (cmd == "objects" && (argc == 8 || argc == 9) &&
      (std::strcmp(argv[7], "unlink") == 0 || std::strcmp(argv[7], "keep") == 0)) {
    return Objects(argv[2], std::atoi(argv[3]), argv[4], argv[5], argv[6],
                   std::strcmp(argv[7], "unlink") == 0, argc == 9 ? argv[8] : nullptr);
  }
  if (cmd == "rmdirs" && argc == 3) return Rmdirs(argv[2]);
  std::fprintf(stderr, "usage: see the comment at the top of tools/vybench.cc\n");
  return 2;
}
