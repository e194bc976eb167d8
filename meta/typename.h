// Typename matching by longest prefix, Vineyard's rule for choosing a resolver:
// a registration for "vineyard::NumericArray" matches "vineyard::NumericArray<int64>",
// and where several registrations match, the longest (most precise) prefix wins.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vineyard {

// Not thread-safe: the owner serializes access (plugins are registered under a lock).
template <typename T>
class PrefixMatcher {
 public:
  // Registers `value` under `prefix`; replaces an earlier value for the same prefix.
  void Add(std::string prefix, T value) { entries_[std::move(prefix)] = std::move(value); }
  bool Remove(const std::string& prefix) { return entries_.erase(prefix) > 0; }
  size_t size() const { return entries_.size(); }

  // The value of the longest registered prefix of `name`, if any.
  const T* Match(std::string_view name) const {
    // Candidates are the prefixes of `name`; check them longest first. A map lookup
    // per length keeps this O(len * log n) without scanning every registration.
    for (size_t len = name.size() + 1; len-- > 0;) {
      auto it = entries_.find(std::string(name.substr(0, len)));
      if (it != entries_.end()) return &it->second;
    }
    return nullptr;
  }

  // Every registration whose prefix matches `name`, longest prefix first.
  std::vector<const T*> MatchAll(std::string_view name) const {
    std::vector<const T*> out;
    for (size_t len = name.size() + 1; len-- > 0;) {
      auto it = entries_.find(std::string(name.substr(0, len)));
      if (it != entries_.end()) out.push_back(&it->second);
    }
    return out;
  }

 private:
  std::map<std::string, T> entries_;
};

}  // namespace vineyard
