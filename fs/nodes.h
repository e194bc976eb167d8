// The functions of the node table's rows (node.h), by the file that holds them. Only
// node_table.cc and the files named here include this.
#pragma once

#include <fcntl.h>

#include <ctime>

#include "fs/node.h"

namespace vineyard {

// Shared by the rows (node_table.cc).
void SetNodeTime(struct stat* st, int64_t ms);
void FillLink(struct stat* st, size_t target_len, Owner owner);
constexpr double kNoCache = 0;
inline bool WantsWrite(int flags) { return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC); }
inline timespec RealtimeNow() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}

// nodes_tree.cc: the fixed tree.
Status StatMountDir(FsState* fs, const NodeKey& key, struct stat* st, double* timeout);
Status StatSharedDir(FsState* fs, const NodeKey& key, struct stat* st, double* timeout);
Status StatInstancesDir(FsState* fs, const NodeKey& key, struct stat* st, double* timeout);
Status StatStatus(FsState* fs, const NodeKey& key, struct stat* st, double* timeout);
Status StatMetrics(FsState* fs, const NodeKey& key, struct stat* st, double* timeout);
Status StatInstanceFile(FsState* fs, const NodeKey& key, struct stat* st, double* timeout);
Status LookupInRoot(FsState* fs, const NodeKey& dir, const std::string& name, NodeKey* child);
Status LookupInObjects(FsState* fs, const NodeKey& dir, const std::string& name, NodeKey* child);
Status LookupInNames(FsState* fs, const NodeKey& dir, const std::string& name, NodeKey* child);
Status LookupInInstances(FsState* fs, const NodeKey& dir, const std::string& name, NodeKey* child);
void ListRoot(FsState* fs, const NodeKey& dir, DirListing* out);
void ListObjects(FsState* fs, const NodeKey& dir, DirListing* out);
void ListNames(FsState* fs, const NodeKey& dir, DirListing* out);
void ListInstances(FsState* fs, const NodeKey& dir, DirListing* out);
Status RenderStatusFile(FsState* fs, const NodeKey& key, std::string* text);
Status RenderMetricsFile(FsState* fs, const NodeKey& key, std::string* text);
Status RenderInstanceFile(FsState* fs, const NodeKey& key, std::string* text);

// nodes_object.cc: an object's directory and files; names/<name>.
Status StatObjectDir(FsState* fs, const NodeKey& key, struct stat* st, double* timeout);
Status StatDataFile(FsState* fs, const NodeKey& key, struct stat* st, double* timeout);
Status StatMembersDir(FsState* fs, const NodeKey& key, struct stat* st, double* timeout);
Status StatMemberLink(FsState* fs, const NodeKey& key, struct stat* st, double* timeout);
Status StatMetaFile(FsState* fs, const NodeKey& key, struct stat* st, double* timeout);
Status StatNameLink(FsState* fs, const NodeKey& key, struct stat* st, double* timeout);
Status LookupInObjectDir(FsState* fs, const NodeKey& dir, const std::string& name, NodeKey* child);
Status LookupInMembers(FsState* fs, const NodeKey& dir, const std::string& name, NodeKey* child);
void ListObjectDir(FsState* fs, const NodeKey& dir, DirListing* out);
void ListMembers(FsState* fs, const NodeKey& dir, DirListing* out);
std::string MemberLinkTarget(FsState* fs, const NodeKey& key);
std::string NameLinkTarget(FsState* fs, const NodeKey& key);
Status RenderMetaFile(FsState* fs, const NodeKey& key, std::string* text);

// nodes_new.cc: new/ and its entries.
Status LookupInNew(FsState* fs, const NodeKey& dir, const std::string& name, NodeKey* child);
void ListNewDir(FsState* fs, const NodeKey& dir, DirListing* out);
Status StatUpload(FsState* fs, const NodeKey& key, struct stat* st, double* timeout);
Status StatNewLink(FsState* fs, const NodeKey& key, struct stat* st, double* timeout);
Status StatUploadError(FsState* fs, const NodeKey& key, struct stat* st, double* timeout);
std::string NewLinkTarget(FsState* fs, const NodeKey& key);
Status RenderUploadError(FsState* fs, const NodeKey& key, std::string* text);

// plugins.cc: resolvers/ and views/.
Status StatPluginFile(FsState* fs, const NodeKey& key, struct stat* st, double* timeout);
Status StatPluginError(FsState* fs, const NodeKey& key, struct stat* st, double* timeout);
Status StatViewsDir(FsState* fs, const NodeKey& key, struct stat* st, double* timeout);
Status StatViewFile(FsState* fs, const NodeKey& key, struct stat* st, double* timeout);
Status LookupInResolvers(FsState* fs, const NodeKey& dir, const std::string& name, NodeKey* child);
Status LookupInViews(FsState* fs, const NodeKey& dir, const std::string& name, NodeKey* child);
void ListResolvers(FsState* fs, const NodeKey& dir, DirListing* out);
void ListViews(FsState* fs, const NodeKey& dir, DirListing* out);
void OpenPluginNode(fuse_req_t req, fuse_ino_t ino, const NodeKey& key, fuse_file_info* fi);
void OpenPluginErrorNode(fuse_req_t req, fuse_ino_t ino, const NodeKey& key, fuse_file_info* fi);
void OpenViewNode(fuse_req_t req, fuse_ino_t ino, const NodeKey& key, fuse_file_info* fi);
void ReadPluginNode(fuse_req_t req, FsState* fs, FileHandle* fh, size_t size, off_t off);

// data_file.cc: objects/<id>/data.
void OpenDataFile(fuse_req_t req, fuse_ino_t ino, const NodeKey& key, fuse_file_info* fi);
void ReadDataFile(fuse_req_t req, FsState* fs, FileHandle* fh, size_t size, off_t off);
// Releases what a data handle holds (its pin, mapping and backing id).
void CloseData(FsState* fs, FileHandle* fh);
// Replies to an OPEN with `fh` (and passthrough `backing`, 0: none); closes a data
// handle the kernel did not take.
void ReplyOpen(fuse_req_t req, fuse_file_info* fi, std::unique_ptr<FileHandle> fh, int backing = 0);

// generated_file.cc: meta.json, status.json, metrics, instances/<n>.json, new/<f>.error.
void OpenGeneratedFile(fuse_req_t req, fuse_ino_t ino, const NodeKey& key, fuse_file_info* fi);
void OpenMetaFile(fuse_req_t req, fuse_ino_t ino, const NodeKey& key, fuse_file_info* fi);
// A READ of a handle holding its content (generated files, resolvers/<stem>.error).
void ReadContent(fuse_req_t req, FsState* fs, FileHandle* fh, size_t size, off_t off);

// upload_file.cc: new/<file> being written.
void OpenUploadFile(fuse_req_t req, fuse_ino_t ino, const NodeKey& key, fuse_file_info* fi);
void ReadUploadFile(fuse_req_t req, FsState* fs, FileHandle* fh, size_t size, off_t off);
// Grows or shrinks an upload to `size`, charging the arena first.
Status ResizeUpload(FsState* fs, Upload* up, uint64_t size) EXCLUSIVE_LOCKS_REQUIRED(up->mu);
// Passthrough for an upload: one backing id per upload, shared by its open handles.
// Returns the id, or 0 for the cached path.
int AcquireUploadBacking(FsState* fs, Upload* up, bool writer) EXCLUSIVE_LOCKS_REQUIRED(up->mu);
// The kernel released one open file of the upload (see upload_file.cc). Returns true
// when the release is settled only once it is answered (UploadReleaseAnswered).
bool UploadReleased(FsState* fs, const std::shared_ptr<Upload>& up, bool writer, bool passthrough,
                    bool release_read, bool flushed);
void UploadReleaseAnswered(FsState* fs, const std::shared_ptr<Upload>& up);

}  // namespace vineyard
