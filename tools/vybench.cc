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
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
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
  std::fprintf(stderr, "usage: see the comment at the top of tools/vybench.cc\n");
  return 2;
}
