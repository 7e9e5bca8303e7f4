// The application side of the fuzz world: what a record's AppAction makes the program on top
// of the stack do. API misuse (sending on a closed socket, ...) returns errors, which are
// fine here: only crashes and broken invariants are findings.
#include <numeric>

#include "stack/tcp/tcp.h"
#include "tests/fuzz/world.h"

namespace tapstack::fuzz {
namespace {

using namespace world;

void keepalive(SocketOptions& o) {
  o.keepalive = true;
  o.keepalive_idle = Duration::seconds(10);
  o.keepalive_interval = Duration::seconds(5);
  o.keepalive_probes = 3;
}
void shrink_receive_buffer(SocketOptions& o) {
  o.receive_buffer = 2048;
}
void no_delay(SocketOptions& o) {
  o.no_delay = true;
}

}  // namespace

void World::act(AppAction action) {
  Tcp& tcp = stack_.tcp();
  switch (action) {
    case AppAction::None:
      return;
    case AppAction::Accept:
      accept_all();
      break;
    case AppAction::Read:
      read_all();
      break;
    case AppAction::SendSigned:
      send(signed_, 100);
      break;
    case AppAction::SendBulkSigned:
      send(signed_, 5000);
      break;
    case AppAction::SendUnsigned:
      send(unsigned_, 100);
      break;
    case AppAction::ShutdownSigned:
      if (signed_) (void)tcp.shutdown(*signed_, ShutdownHow::Write, now_);
      break;
    case AppAction::ShutdownUnsigned:
      if (unsigned_) (void)tcp.shutdown(*unsigned_, ShutdownHow::Write, now_);
      break;
    case AppAction::CloseSigned:
      forget(signed_);
      break;
    case AppAction::CloseUnsigned:
      forget(unsigned_);
      break;
    case AppAction::AbortAccepted:
      if (!accepted_.empty()) {
        (void)tcp.abort(accepted_.front(), now_);
        accepted_.erase(accepted_.begin());
      }
      break;
    case AppAction::ConnectSigned:
      connect_signed();
      break;
    case AppAction::Keepalive:
      set_held_options(keepalive);
      break;
    case AppAction::ShrinkReceiveBuffer:
      set_held_options(shrink_receive_buffer);
      break;
    case AppAction::NoDelay:
      set_held_options(no_delay);
      break;
    case AppAction::CloseListener:
      forget(listener_);
      break;
  }
  drain();
}

std::vector<SocketId> World::held() const {
  std::vector<SocketId> ids(accepted_);
  ids.insert(ids.end(), connected_.begin(), connected_.end());
  for (const auto& id : {signed_, unsigned_}) {
    if (id) ids.push_back(*id);
  }
  return ids;
}

void World::accept_all() {
  if (!listener_) return;
  while (const auto id = stack_.tcp().accept(*listener_)) accepted_.push_back(*id);
}

void World::read_all() {
  uint8_t buffer[4096];
  for (const SocketId id : held()) {
    for (int i = 0; i < 128; ++i) {
      const auto n = stack_.tcp().receive(id, buffer, now_);
      if (!n || *n == 0) break;
    }
  }
}

void World::send(std::optional<SocketId> id, size_t size) {
  if (!id) return;
  std::vector<uint8_t> data(size);
  std::iota(data.begin(), data.end(), uint8_t{0});
  (void)stack_.tcp().send(*id, data, now_);
}

void World::connect_signed() {
  if (connected_.size() >= kMaxConnects) return;
  Tcp& tcp = stack_.tcp();
  const auto id = tcp.open();
  if (!id) return;
  (void)tcp.set_md5_key(*id, kPrefixPeer, 32, md5opt::text_bytes(kPrefixKey));
  const auto port = static_cast<uint16_t>(kConnectLocalPort + connected_.size());
  if (tcp.connect(*id, kPrefixPeer, kListenPort, now_, port)) {
    connected_.push_back(*id);
  } else {
    (void)tcp.close(*id, now_);
  }
}

void World::forget(std::optional<SocketId>& id) {
  if (!id) return;
  (void)stack_.tcp().close(*id, now_);
  id.reset();
}

void World::set_held_options(void (*change)(SocketOptions&)) {
  Tcp& tcp = stack_.tcp();
  for (const SocketId id : held()) {
    auto options = tcp.options(id);
    if (!options) continue;
    change(*options);
    (void)tcp.set_options(id, *options);
  }
}

}  // namespace tapstack::fuzz
