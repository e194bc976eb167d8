// IndexedOrderedMap: nlohmann's ordered_map (objects keep their keys in insertion
// order, a repeated key overwrites in place) with a hash index once an object holds
// more than kIndexFrom keys. nlohmann's own looks every key up by a linear scan, so
// parsing or building an object of n keys cost n^2/2 string comparisons: measured, a
// meta.json of 40,000 fields took 20 s to create and 30 s to read, and the 16 MiB limit
// allows a million. With the index both are linear. Used as ObjectType of `ojson`
// (meta/json.h).
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>

namespace vineyard {

template <class Key, class T, class IgnoredLess = std::less<Key>,
          class Allocator = std::allocator<std::pair<const Key, T>>>
struct IndexedOrderedMap : nlohmann::ordered_map<Key, T, IgnoredLess, Allocator> {
  using Base = nlohmann::ordered_map<Key, T, IgnoredLess, Allocator>;
  using Container = typename Base::Container;
  using key_type = typename Base::key_type;
  using mapped_type = typename Base::mapped_type;
  using iterator = typename Base::iterator;
  using const_iterator = typename Base::const_iterator;
  using size_type = typename Base::size_type;
  using value_type = typename Base::value_type;
  using key_compare = typename Base::key_compare;
  template <class K>
  using IfKey = nlohmann::detail::enable_if_t<
      nlohmann::detail::is_usable_as_key_type<key_compare, key_type, K>::value, int>;

  static constexpr size_type kIndexFrom = 16;

  IndexedOrderedMap() = default;
  explicit IndexedOrderedMap(const Allocator& alloc) : Base(alloc) {}
  template <class It>
  IndexedOrderedMap(It first, It last, const Allocator& alloc = Allocator()) : Base(alloc) {
    insert(first, last);
  }
  IndexedOrderedMap(std::initializer_list<value_type> init, const Allocator& alloc = Allocator())
      : Base(alloc) {
    insert(init.begin(), init.end());
  }

  std::pair<iterator, bool> emplace(const key_type& key, T&& t) {
    if (iterator it = find(key); it != this->end()) return {it, false};
    Container::emplace_back(key, std::forward<T>(t));
    return {Added(), true};
  }
  template <class K, IfKey<K> = 0>
  std::pair<iterator, bool> emplace(K&& key, T&& t) {
    if (iterator it = find(key); it != this->end()) return {it, false};
    Container::emplace_back(std::forward<K>(key), std::forward<T>(t));
    return {Added(), true};
  }

  T& operator[](const key_type& key) { return emplace(key, T{}).first->second; }
  template <class K, IfKey<K> = 0>
  T& operator[](K&& key) {
    return emplace(std::forward<K>(key), T{}).first->second;
  }
  const T& operator[](const key_type& key) const { return at(key); }
  template <class K, IfKey<K> = 0>
  const T& operator[](K&& key) const {
    return at(std::forward<K>(key));
  }

  T& at(const key_type& key) { return Found(find(key), this->end())->second; }
  template <class K, IfKey<K> = 0>
  T& at(K&& key) {
    return Found(find(key), this->end())->second;
  }
  const T& at(const key_type& key) const { return Found(find(key), this->end())->second; }
  template <class K, IfKey<K> = 0>
  const T& at(K&& key) const {
    return Found(find(key), this->end())->second;
  }

  size_type erase(const key_type& key) {
    iterator it = find(key);
    if (it == this->end()) return 0;
    erase(it);
    return 1;
  }
  template <class K, IfKey<K> = 0>
  size_type erase(K&& key) {
    iterator it = find(key);
    if (it == this->end()) return 0;
    erase(it);
    return 1;
  }
  iterator erase(iterator pos) { return erase(pos, std::next(pos)); }
  iterator erase(iterator first, iterator last) {
    Forget();  // positions after `first` move
    return Base::erase(first, last);
  }
  void clear() noexcept {
    Forget();
    Container::clear();
  }

  size_type count(const key_type& key) const { return find(key) == this->end() ? 0 : 1; }
  template <class K, IfKey<K> = 0>
  size_type count(K&& key) const {
    return find(key) == this->end() ? 0 : 1;
  }

  iterator find(const key_type& key) { return this->begin() + Position(key); }
  template <class K, IfKey<K> = 0>
  iterator find(K&& key) {
    return this->begin() + Position(key);
  }
  const_iterator find(const key_type& key) const { return this->begin() + Position(key); }
  template <class K, IfKey<K> = 0>
  const_iterator find(K&& key) const {
    return this->begin() + Position(key);
  }

  std::pair<iterator, bool> insert(value_type&& value) {
    return emplace(value.first, std::move(value.second));
  }
  std::pair<iterator, bool> insert(const value_type& value) {
    if (iterator it = find(value.first); it != this->end()) return {it, false};
    Container::push_back(value);
    return {Added(), true};
  }
  template <typename InputIt, typename = typename Base::template require_input_iter<InputIt>>
  void insert(InputIt first, InputIt last) {
    for (auto it = first; it != last; ++it) insert(*it);
  }

 private:
  // The position of `key`, or size() if it is not here.
  template <class K>
  size_type Position(const K& key) const {
    if (this->size() < kIndexFrom) {
      for (size_type i = 0; i < this->size(); ++i) {
        if (compare_((this->begin() + i)->first, key)) return i;
      }
      return this->size();
    }
    if (!indexed_) {
      index_.clear();
      index_.reserve(this->size() * 2);
      for (size_type i = 0; i < this->size(); ++i) index_.emplace((this->begin() + i)->first, i);
      indexed_ = true;
    }
    // A key of another type (a string_view, a char array) becomes a key_type once.
    auto it = [&] {
      if constexpr (std::is_same_v<K, key_type>) {
        return index_.find(key);
      } else {
        return index_.find(key_type(key));
      }
    }();
    return it == index_.end() ? this->size() : it->second;
  }
  // The element just appended, entered in the index if there is one.
  iterator Added() {
    if (indexed_) index_.emplace(this->back().first, this->size() - 1);
    return std::prev(this->end());
  }
  template <class It>
  static It Found(It it, It end) {
    if (it == end) throw std::out_of_range("key not found");
    return it;
  }
  void Forget() {
    indexed_ = false;
    index_.clear();
  }

  key_compare compare_;
  mutable std::unordered_map<key_type, size_type> index_;
  mutable bool indexed_ = false;
};

}  // namespace vineyard
