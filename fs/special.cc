// Generated files: status.json (this node), metrics (the same figures in Prometheus
// text format) and instances/<n>.json (this node and every peer that has said who
// it is). Field names follow the mount options (DESIGN.md §2).
#include <algorithm>
#include <nlohmann/json.hpp>

#include "fs/ops.h"
#include "vineyardfs/version.h"

namespace vineyard {

using ojson = nlohmann::ordered_json;

std::vector<InstanceId> KnownInstances(FsState* fs) {
  std::vector<InstanceId> out{fs->table->instance()};
  if (fs->opts.cluster) {
    for (auto& p : fs->opts.cluster->Peers()) {
      if (p.instance != 0 && p.status != "refused") out.push_back(p.instance);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool KnownInstance(FsState* fs, InstanceId n) {
  auto all = KnownInstances(fs);
  return std::find(all.begin(), all.end(), n) != all.end();
}

namespace {

// This node's PUB endpoint as the options show it (null for a node that does not listen).
ojson ShownListen(FsState* fs) {
  auto listen = fs->opts.shown_options.find("listen");
  return listen == fs->opts.shown_options.end() ? ojson(nullptr) : ojson(listen->second);
}

ojson ClusterStatus(FsState* fs) {
  Replicator* r = fs->opts.cluster;
  ojson peers = ojson::array();
  for (auto& p : r->Peers()) {
    ojson j{{"endpoint", p.endpoint},
            {"instance", p.instance == 0 ? ojson(nullptr) : ojson(p.instance)},
            {"status", p.status}};
    if (!p.reason.empty()) j["reason"] = p.reason;
    peers.push_back(std::move(j));
  }
  const ClusterCounters& k = r->counters();
  return ojson{{"listen", ShownListen(fs)},
               {"curve", r->curve()},
               {"published_seq", fs->table->published_seq()},
               {"peers", peers},
               {"published", k.published.load()},
               {"applied", k.applied.load()},
               {"snapshots_served", k.snapshots_served.load()},
               {"snapshots_taken", k.snapshots_taken.load()},
               {"gaps", k.gaps.load()},
               {"malformed", k.malformed.load()},
               {"rejected", k.rejected.load()},
               {"refused_peers", k.refused_peers.load()},
               {"auth_refused", k.auth_refused.load()},
               {"fetches", k.fetches.load()},
               {"fetch_bytes", k.fetch_bytes.load()},
               {"fetch_errors", k.fetch_errors.load()},
               {"router_queued_bytes", k.router_queued_bytes.load()},
               {"router_refused", k.router_refused.load()},
               {"peer_overflows", k.peer_overflows.load()}};
}

// Uploads in new/: how many, the arena memory they hold, and the failed ones.
struct UploadCounts {
  uint64_t uploads = 0, bytes = 0, failed = 0, failed_bytes = 0;
};
UploadCounts CountUploads(FsState* fs) {
  UploadCounts u;
  for (auto& [name, up] : fs->uploads.List()) {
    MutexLock lock(&up->mu);
    if (up->sealed.valid()) continue;  // a link: its bytes are the object's now
    ++u.uploads;
    struct stat st;
    uint64_t held = up->fd >= 0 && fstat(up->fd, &st) == 0 ? uint64_t(st.st_blocks) * 512 : 0;
    u.bytes += held;
    if (!up->error.empty()) {
      ++u.failed;
      u.failed_bytes += held;
    }
  }
  return u;
}

// The arena's and the state database's part of status.json.
void ArenaStatus(FsState* fs, const Store::Stats& st, ojson* out) {
  ojson& j = *out;
  const StoreOptions& so = fs->store->options();
  j["arena"] = {{"path", so.arena},
                {"size", st.capacity},
                {"used", st.used},
                {"free", st.capacity > st.used ? st.capacity - st.used : 0},
                {"tmpfs_mounted", fs->store->mounted_tmpfs()},
                {"resident_blobs", st.resident},
                {"evictions", st.evictions},
                {"reloads", st.reloads},
                {"huge", so.huge},
                {"huge_collapsed", st.collapsed},
                {"huge_pending", st.pending_collapse},
                {"reserve", so.reserve},
                {"reserve_ready", st.reserve_ready},
                {"reserve_takes", st.reserve_takes}};
  j["state"] = {{"path", so.state},
                {"durability", DurabilityName(so.durability)},
                {"durable_blobs", st.durable},
                {"pending_durable", st.pending_durable},
                {"durable_errors", st.durable_errors}};
}

// The FUSE requests served, by operation.
ojson RequestStatus(const Counters& k) {
  return ojson{{"lookup", k.lookups.load()},
               {"getattr", k.getattrs.load()},
               {"open", k.opens.load()},
               {"read", k.reads.load()},
               {"write", k.writes.load()},
               {"read_bytes", k.read_bytes.load()},
               {"write_bytes", k.write_bytes.load()},
               {"readdir", k.readdirs.load()},
               {"readdirplus", k.readdirplus.load()},
               {"getxattr", k.xattrs.load()},
               {"flush", k.flushes.load()},
               {"release", k.releases.load()},
               {"seal", k.seals.load()},
               {"seal_errors", k.seal_errors.load()},
               {"delete", k.deletes.load()}};
}

// The plugins loaded and refused.
ojson PluginStatus(FsState* fs) {
  ojson loaded = ojson::array(), refused = ojson::object();
  for (auto& e : fs->plugins->List()) {
    if (e.loaded)
      loaded.push_back(e.file);
    else
      refused[e.file] = e.error;
  }
  return ojson{{"dir", fs->plugins->dir()},
               {"builtin_dir", fs->opts.builtin_plugins},
               {"loaded", loaded},
               {"refused", refused}};
}

}  // namespace

std::string RenderStatus(FsState* fs) {
  Store::Stats st = fs->store->stats();
  const UploadCounts u = CountUploads(fs);
  ObjectTable::Counts c = fs->table->counts();
  ojson j;
  j["instance"] = fs->table->instance();
  j["version"] = VINEYARDFS_VERSION;
  j["uptime_s"] = (NowMs() - fs->start_ms) / 1000;
  ArenaStatus(fs, st, &j);
  j["objects"] = {{"total", c.objects},         {"blobs", c.blobs},
                  {"blob_bytes", c.blob_bytes}, {"persisted", c.persisted},
                  {"names", c.names},           {"uploads", u.uploads},
                  {"upload_bytes", u.bytes},    {"failed_uploads", u.failed},
                  {"failed_upload_bytes", u.failed_bytes},
                  {"uploads_awaiting_seal", fs->seal_waiter.waiting()},
                  {"remote", c.remote},         {"cached_payloads", st.cached}};
  if (fs->opts.cluster) j["cluster"] = ClusterStatus(fs);
  const Counters& k = fs->counters;
  // What new/ holds (uploads and links, its creation order, its serial index) and how
  // links left it after new_ttl (README "Millions of objects"); the inodes the kernel holds.
  const NewDir::Sizes nd = fs->uploads.sizes();
  j["new"] = {{"entries", nd.entries},
              {"order", nd.order},
              {"serials", nd.serials},
              {"links_expired", k.links_expired.load()},
              {"expiry_steps", k.expiry_steps.load()}};
  j["inodes"] = fs->inodes.size();
  j["requests"] = RequestStatus(k);
  if (fs->plugins) j["plugins"] = PluginStatus(fs);
  const BlobBackings::Stats b = fs->backings.stats();
  j["io_path"] = {{"mode", fs->passthrough.enabled() ? "passthrough" : "fallback"},
                  {"reason", fs->io_path_reason},
                  {"backing_ids", {{"held", b.held}, {"idle", b.idle}, {"opened", b.opened},
                                   {"closed", b.closed}, {"reused", b.reused}}}};
  ojson opts = ojson::object();
  for (auto& [k2, v] : fs->opts.shown_options) opts[k2] = v;
  j["options"] = opts;
  return j.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n";
}

namespace {

// The text of metrics, one metric at a time (HELP, TYPE, then its value).
struct MetricsText {
  std::string out;
  void operator()(const char* name, const char* type, const char* help, uint64_t v,
                  const char* labels = "") {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
           name + labels + " " + std::to_string(v) + "\n";
  }
};

// The metrics of a cluster member: replication and remote payloads.
void ClusterMetrics(Replicator* r, const ObjectTable::Counts& c, const Store::Stats& st,
                    MetricsText& metric) {
  const ClusterCounters& q = r->counters();
  metric("vineyardfs_cluster_remote_objects", "gauge", "Objects replicated from other nodes.",
         c.remote);
  metric("vineyardfs_cluster_published_total", "counter", "Changes published to peers.",
         q.published);
  metric("vineyardfs_cluster_applied_total", "counter", "Peer updates applied.", q.applied);
  metric("vineyardfs_cluster_snapshots_taken_total", "counter", "Snapshots taken from peers.",
         q.snapshots_taken);
  metric("vineyardfs_cluster_snapshots_served_total", "counter", "Snapshots served to peers.",
         q.snapshots_served);
  metric("vineyardfs_cluster_gaps_total", "counter", "Sequence gaps seen (each resynced).",
         q.gaps);
  metric("vineyardfs_cluster_malformed_total", "counter",
         "Messages dropped as malformed or not allowed.", q.malformed);
  metric("vineyardfs_cluster_rejected_total", "counter",
         "Changes refused by the object table (bad records).", q.rejected);
  metric("vineyardfs_cluster_refused_peers_total", "counter",
         "Peers refused (they claimed a taken instance id).", q.refused_peers);
  metric("vineyardfs_cluster_auth_refused_total", "counter",
         "CURVE clients refused (unknown key).", q.auth_refused);
  metric("vineyardfs_cluster_fetches_total", "counter", "Remote payloads fetched.", q.fetches);
  metric("vineyardfs_cluster_fetch_bytes_total", "counter", "Bytes fetched.", q.fetch_bytes);
  metric("vineyardfs_cluster_fetch_errors_total", "counter", "Fetches that failed.",
         q.fetch_errors);
  metric("vineyardfs_cluster_served_bytes_total", "counter", "Payload bytes served to peers.",
         q.bytes_served);
  metric("vineyardfs_cached_payloads", "gauge", "Cached copies of remote payloads.", st.cached);
}

}  // namespace

std::string RenderMetrics(FsState* fs) {
  Store::Stats st = fs->store->stats();
  ObjectTable::Counts c = fs->table->counts();
  const Counters& k = fs->counters;
  MetricsText metric;
  std::string& out = metric.out;
  metric("vineyardfs_arena_capacity_bytes", "gauge", "Arena capacity (size=).", st.capacity);
  metric("vineyardfs_arena_used_bytes", "gauge", "Payload bytes held in the arena.", st.used);
  metric("vineyardfs_objects", "gauge", "Objects visible on this node.", c.objects);
  metric("vineyardfs_blobs", "gauge", "Blobs visible on this node.", c.blobs);
  metric("vineyardfs_persisted_objects", "gauge", "Persisted objects.", c.persisted);
  metric("vineyardfs_names", "gauge", "Names in names/.", c.names);
  const UploadCounts u = CountUploads(fs);
  metric("vineyardfs_uploads", "gauge", "Unsealed files in new/.", u.uploads);
  metric("vineyardfs_upload_bytes", "gauge", "Arena bytes held by unsealed files in new/.",
         u.bytes);
  metric("vineyardfs_failed_uploads", "gauge", "Files in new/ whose seal failed.", u.failed);
  metric("vineyardfs_failed_upload_bytes", "gauge", "Arena bytes held by failed uploads.",
         u.failed_bytes);
  if (fs->plugins) {
    metric("vineyardfs_plugins_loaded", "gauge", "Plugins loaded.", fs->plugins->loaded_count());
  }
  metric("vineyardfs_resident_blobs", "gauge", "Blobs whose payload is in the arena.", st.resident);
  metric("vineyardfs_pending_durable_blobs", "gauge", "Payloads waiting to be made durable.",
         st.pending_durable);
  metric("vineyardfs_evictions_total", "counter", "Blobs evicted from the arena.", st.evictions);
  metric("vineyardfs_reloads_total", "counter", "Blobs reloaded from RocksDB.", st.reloads);
  metric("vineyardfs_arena_reserve_ready_bytes", "gauge",
         "Arena memory written ahead for daemon-written payloads (reserve=).", st.reserve_ready);
  metric("vineyardfs_arena_reserve_takes_total", "counter",
         "Payloads written over the reserve.", st.reserve_takes);
  metric("vineyardfs_durable_errors_total", "counter", "Failed durable copies.", st.durable_errors);
  metric("vineyardfs_seals_total", "counter", "Uploads sealed into objects.", k.seals);
  metric("vineyardfs_seal_errors_total", "counter", "Seals that failed.", k.seal_errors);
  metric("vineyardfs_deletes_total", "counter", "Objects deleted by rmdir.", k.deletes);
  out +=
      "# HELP vineyardfs_fuse_requests_total FUSE requests served by the daemon.\n"
      "# TYPE vineyardfs_fuse_requests_total counter\n";
  const std::pair<const char*, uint64_t> reqs[] = {{"lookup", k.lookups}, {"getattr", k.getattrs},
                                                   {"open", k.opens},     {"read", k.reads},
                                                   {"write", k.writes},   {"readdir", k.readdirs}};
  for (auto& [op, v] : reqs) {
    out += std::string("vineyardfs_fuse_requests_total{op=\"") + op + "\"} " + std::to_string(v) +
           "\n";
  }
  if (Replicator* r = fs->opts.cluster) ClusterMetrics(r, c, st, metric);
  metric("vineyardfs_read_bytes_total", "counter", "Bytes served by READ requests.", k.read_bytes);
  metric("vineyardfs_write_bytes_total", "counter", "Bytes received by WRITE requests.",
         k.write_bytes);
  return out;
}

std::string RenderInstance(FsState* fs, InstanceId n) {
  ojson j;
  j["instance"] = n;
  j["self"] = n == fs->table->instance();
  const int64_t now = NowMs();
  if (n == fs->table->instance()) {
    j["endpoint"] = ShownListen(fs);
    j["status"] = "up";
    j["last_seen"] = now;
    j["last_seen_ms_ago"] = 0;
    j["replication_lag"] = 0;
    j["published_seq"] = fs->table->published_seq();
    return j.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n";
  }
  for (auto& p : fs->opts.cluster ? fs->opts.cluster->Peers() : std::vector<PeerInfo>{}) {
    if (p.instance != n || p.status == "refused") continue;
    j["endpoint"] = p.endpoint;
    j["status"] = p.status;
    j["last_seen"] = p.last_heard_ms;
    j["last_seen_ms_ago"] = p.last_heard_ms ? now - p.last_heard_ms : -1;
    // Changes it announced that are not applied here yet.
    j["replication_lag"] = p.published_seq > p.applied_seq ? p.published_seq - p.applied_seq : 0;
    j["published_seq"] = p.published_seq;
    j["applied_seq"] = p.applied_seq;
    j["snapshots"] = p.snapshots;
  }
  return j.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n";
}

}  // namespace vineyard
