// The fixture of the tests of meta/object_table.cc (object_table_*_test.cc): an
// in-memory Journal, a seam that really keeps what is committed (as encoded records,
// like StateDb) and can be told to fail, and ObjectTableTest over it.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "meta/object_table.h"

namespace vineyard {

using ojson = nlohmann::ordered_json;

// Keeps the journal in maps of encoded values, as a storage engine would.
class MemJournal : public Journal {
 public:
  Status Commit(const JournalBatch& batch) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++commits_;
    if (fail_next_commit_) {
      fail_next_commit_ = false;
      return Status::IOError("injected commit failure");
    }
    for (const auto& r : batch.put_objects) objects_[r.id] = EncodeRecord(r);
    for (ObjectID id : batch.delete_objects) objects_.erase(id);
    for (const auto& [name, n] : batch.put_names) names_[name] = EncodeName(n);
    for (const auto& name : batch.drop_names) names_.erase(name);
    for (const auto& [name, stamp] : batch.put_tombstones) tombstones_[name] = stamp;
    for (const auto& name : batch.drop_tombstones) tombstones_.erase(name);
    if (batch.seq != 0) seq_ = batch.seq;
    return Status::OK();
  }
  Status SaveIdLimit(uint64_t limit) override {
    std::lock_guard<std::mutex> lock(mu_);
    id_limit_ = limit;
    ++saves_;
    return Status::OK();
  }
  Status Load(Contents* out) override {
    std::lock_guard<std::mutex> lock(mu_);
    out->id_limit = id_limit_;
    out->seq = seq_;
    for (const auto& [id, bytes] : objects_) {
      auto r = DecodeRecord(bytes);
      if (!r.ok()) {
        out->bad.push_back("object " + id.ToString() + ": " + r.status().message());
        continue;
      }
      out->objects.push_back(*r);
    }
    for (const auto& [name, bytes] : names_) {
      auto n = DecodeName(bytes);
      if (!n.ok()) {
        out->bad.push_back("name " + name + ": " + n.status().message());
        continue;
      }
      out->names.emplace_back(name, *n);
    }
    for (const auto& t : tombstones_) out->tombstones.push_back(t);
    return Status::OK();
  }

  // Test hooks.
  void TestFailNextCommit() { fail_next_commit_ = true; }
  void TestPutRaw(ObjectID id, std::string bytes) { objects_[id] = std::move(bytes); }
  void TestPutRecord(const ObjectRecord& r) { objects_[r.id] = EncodeRecord(r); }
  void TestPutName(const std::string& name, const NameRecord& n) { names_[name] = EncodeName(n); }
  bool HasObject(ObjectID id) const { return objects_.count(id) > 0; }
  bool HasName(const std::string& name) const { return names_.count(name) > 0; }
  ObjectRecord Stored(ObjectID id) const { return *DecodeRecord(objects_.at(id)); }
  size_t object_count() const { return objects_.size(); }
  size_t name_count() const { return names_.size(); }
  int commits() const { return commits_; }
  uint64_t id_limit() const { return id_limit_; }

 private:
  std::mutex mu_;
  std::map<ObjectID, std::string> objects_;
  std::map<std::string, std::string> names_;
  std::map<std::string, NameStamp> tombstones_;
  uint64_t id_limit_ = 0;
  uint64_t seq_ = 0;
  int saves_ = 0;
  int commits_ = 0;
  bool fail_next_commit_ = false;
};

const Owner kOwner{1000, 1000};

class ObjectTableTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  // A new table over the same journal, as after a restart.
  void Reopen() {
    table_ = std::make_unique<ObjectTable>(1, &journal_);
    warnings_.clear();
    ASSERT_TRUE(table_->Load(&warnings_).ok());
  }

  ObjectID Blob(uint64_t size) {
    auto id = table_->NewId(true);
    EXPECT_TRUE(id.ok());
    auto r = table_->AddBlob(*id, size, kOwner);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return *id;
  }

  Result<ObjectRecord> CreateJson(const std::string& json) {
    auto spec = ParseCreateMeta(json);
    if (!spec.ok()) return spec.status();
    return table_->Create(*spec, kOwner);
  }

  // {"typename": type, "<field>": {"id": ...}, ...} plus any extra JSON members.
  ObjectID Make(const std::vector<std::pair<std::string, ObjectID>>& members,
                const std::string& extra = "") {
    std::string json = R"({"typename":"test::Thing")";
    for (auto& [field, id] : members)
      json += ",\"" + field + "\":{\"id\":\"" + id.ToString() + "\"}";
    json += extra + "}";
    auto r = CreateJson(json);
    EXPECT_TRUE(r.ok()) << json << ": " << r.status().ToString();
    return r.ok() ? r->id : ObjectID();
  }

  uint32_t Referrers(ObjectID id) { return table_->Get(id)->referrers; }

  std::vector<ObjectID> AllObjects() { return table_->ListObjects(0, 1u << 20); }

  MemJournal journal_;
  std::unique_ptr<ObjectTable> table_;
  std::vector<std::string> warnings_;
};

}  // namespace vineyard
