// Text helpers and syscall wrappers of vyctl (tools/vyctl/vyctl.h).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>

#include "tools/vyctl/vyctl.h"

namespace vyctl {

void PrintError(const std::string& message) { std::cerr << "vyctl: " << message << '\n'; }

std::string ErrnoText(int err) { return std::strerror(err); }

void PrintJson(const Json& j) {
  std::cout << j.dump(2, ' ', false, Json::error_handler_t::replace) << '\n';
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The last component of a path or symlink target ("../objects/o12" -> "o12").
std::string LastComponent(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// "o" followed by exactly 16 lowercase hex digits (DESIGN.md §3).
bool IsObjectId(const std::string& s) {
  if (s.size() != 17 || s[0] != 'o') return false;
  return std::all_of(s.begin() + 1, s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A name is a single entry of names/.
bool IsValidName(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos;
}

// What is wrong with a name that vyctl is asked to create, or "". A name
// spelled like an object id is refused: as a REF it would always mean the id.
std::string NewNameProblem(const std::string& name) {
  if (!IsValidName(name)) return "invalid name '" + name + "'";
  if (IsObjectId(name)) return "name '" + name + "' looks like an object id";
  return "";
}

int ReadLink(const std::string& path, std::string* target) {
  std::vector<char> buf(256);
  for (;;) {
    ssize_t n = readlink(path.c_str(), buf.data(), buf.size());
    if (n < 0) return errno;
    if (static_cast<size_t>(n) < buf.size()) {
      target->assign(buf.data(), static_cast<size_t>(n));
      return 0;
    }
    buf.resize(buf.size() * 2);  // possibly truncated: try a larger buffer
  }
}

int GetXattr(const std::string& path, const std::string& key, std::string* value) {
  std::vector<char> buf(256);
  for (;;) {
    ssize_t n = getxattr(path.c_str(), key.c_str(), buf.data(), buf.size());
    if (n >= 0) {
      value->assign(buf.data(), static_cast<size_t>(n));
      return 0;
    }
    if (errno != ERANGE) return errno;
    ssize_t needed = getxattr(path.c_str(), key.c_str(), nullptr, 0);
    if (needed < 0) return errno;
    buf.resize(static_cast<size_t>(needed) + 1);
  }
}

int ListXattr(const std::string& path, std::vector<std::string>* keys) {
  std::vector<char> buf(1024);
  for (;;) {
    ssize_t n = listxattr(path.c_str(), buf.data(), buf.size());
    if (n >= 0) {
      // The list is a sequence of NUL-terminated names.
      for (size_t i = 0; i < static_cast<size_t>(n);) {
        std::string key(buf.data() + i);
        i += key.size() + 1;
        if (!key.empty()) keys->push_back(key);
      }
      return 0;
    }
    if (errno != ERANGE) return errno;
    ssize_t needed = listxattr(path.c_str(), nullptr, 0);
    if (needed < 0) return errno;
    buf.resize(static_cast<size_t>(needed) + 1);
  }
}

int SetXattr(const std::string& path, const std::string& key, const std::string& value) {
  return setxattr(path.c_str(), key.c_str(), value.data(), value.size(), 0) == 0 ? 0 : errno;
}

// The entries of a directory except "." and "..", unsorted.
int ListDir(const std::string& path, std::vector<std::string>* entries) {
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return errno;
  errno = 0;
  while (const dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") entries->push_back(name);
  }
  int err = errno;
  closedir(dir);
  return err;
}

int WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return 0;
}

// Copies in_fd to its end into out_fd in kChunkSize pieces. On failure
// returns the errno and sets *write_failed to say which side failed.
int CopyFd(int in_fd, int out_fd, bool* write_failed) {
  std::vector<char> buf(kChunkSize);
  for (;;) {
    ssize_t n = read(in_fd, buf.data(), buf.size());
    if (n == 0) return 0;
    if (n < 0) {
      if (errno == EINTR) continue;
      *write_failed = false;
      return errno;
    }
    if (int err = WriteAll(out_fd, buf.data(), static_cast<size_t>(n))) {
      *write_failed = true;
      return err;
    }
  }
}

int ReadFile(const std::string& path, std::string* contents) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  std::vector<char> buf(kChunkSize);
  int err = 0;
  for (;;) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n > 0) contents->append(buf.data(), static_cast<size_t>(n));
    if (n == 0) break;
    if (n < 0 && errno != EINTR) {
      err = errno;
      break;
    }
  }
  close(fd);
  return err;
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

}  // namespace vyctl
