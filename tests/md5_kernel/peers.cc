#include "tests/md5_kernel/peers.h"

#include <algorithm>
#include <atomic>
#include <thread>

#include "tap/clock.h"

namespace tapstack::md5kernel {
namespace {

std::optional<Connection> stack_connects(TapRig& rig, uint16_t port, const KeyPlan& keys,
                                         Duration limit) {
  const Fd listener =
      value_or_throw(kernel_listen(rig.kernel_address(), port, keys.kernel), "kernel listener");
  Tcp& tcp = rig.tcp();
  const SocketId id = value_or_throw(tcp.open(), "stack open");
  set_stack_keys(tcp, id, keys.stack);
  ok_or_throw(tcp.connect(id, rig.kernel_address(), port, monotonic_now()), "stack connect");
  Fd accepted;
  const bool connected = rig.pump_until(
      [&] {
        if (accepted.get() < 0) accepted = try_accept(listener.get());
        return accepted.get() >= 0 && (tcp.events(id) & socket_event::kConnected);
      },
      limit);
  if (connected) return Connection{std::move(accepted), id};
  tcp.close(id, monotonic_now());
  return std::nullopt;
}

std::optional<Connection> kernel_connects(TapRig& rig, uint16_t port, const KeyPlan& keys,
                                          Duration limit) {
  Tcp& tcp = rig.tcp();
  const SocketId listener = value_or_throw(tcp.listen(port, 8), "stack listen");
  set_stack_keys(tcp, listener, keys.stack);
  Fd client = value_or_throw(
      kernel_start_connect(rig.kernel_address(), rig.stack_address(), port, keys.kernel),
      "kernel connect");
  std::optional<SocketId> accepted;
  const bool connected = rig.pump_until(
      [&] {
        if (!accepted) {
          if (auto id = tcp.accept(listener)) accepted = *id;
        }
        return accepted && connect_result(client.get()) == 0;
      },
      limit);
  tcp.close(listener, monotonic_now());
  if (connected) return Connection{std::move(client), *accepted};
  if (accepted) tcp.close(*accepted, monotonic_now());
  return std::nullopt;
}

}  // namespace

std::string_view to_string(Listener listener) {
  return listener == Listener::Kernel ? "kernel listens" : "stack listens";
}

KeyPlan seed_keys(IpFamily family) {
  if (family == IpFamily::Ipv6) return {{{kStack6, 128, kSeedKey}}, {{kKernel6, 128, kSeedKey}}};
  return {{{kStack, 32, kSeedKey}}, {{kKernel, 32, kSeedKey}}};
}

void set_stack_keys(Tcp& tcp, SocketId id, const std::vector<PeerKey>& keys) {
  for (const PeerKey& key : keys) {
    ok_or_throw(tcp.set_md5_key(id, key.peer, key.prefix_length, key_bytes(key.key)),
                "set_md5_key");
  }
}

std::optional<Connection> open_connection(TapRig& rig, Listener who, uint16_t port,
                                          const KeyPlan& keys, Duration limit) {
  return who == Listener::Kernel ? stack_connects(rig, port, keys, limit)
                                 : kernel_connects(rig, port, keys, limit);
}

void close_connection(TapRig& rig, Connection& connection) {
  rig.tcp().close(connection.stack, monotonic_now());
  connection.kernel.reset();
  rig.pump_for(Duration::milliseconds(50));
}

size_t Outcome::count(FrameDirection direction) const {
  return static_cast<size_t>(
      std::count_if(segments.begin(), segments.end(),
                    [&](const SegmentRecord& s) { return s.direction == direction; }));
}

Outcome attempt_connection(TapRig& rig, Listener who, uint16_t port, const KeyPlan& keys,
                           Duration limit) {
  rig.clear_log();
  const Md5Counters kernel_before = kernel_md5_counters();
  const Md5Counters stack_before = stack_md5_counters(rig.stack());
  auto connection = open_connection(rig, who, port, keys, limit);
  // Whatever is still on its way through the TAP gets counted before the counters are read.
  rig.pump_for(Duration::milliseconds(20));
  Outcome outcome{connection.has_value(), kernel_md5_counters() - kernel_before,
                  stack_md5_counters(rig.stack()) - stack_before, rig.log()};
  if (connection) close_connection(rig, *connection);
  return outcome;
}

bool run_exchange(TapRig& rig, KernelStream& kernel, const Goal& kernel_goal, StackStream& stack,
                  const Goal& stack_goal, Duration limit, const std::function<void()>& kernel_turn,
                  const std::function<void(Instant)>& stack_turn) {
  enum : int { kRunning, kReached, kFailed };
  std::atomic<int> kernel_state{kRunning};
  // Joins when it goes, also if the loop throws.
  std::jthread kernel_thread([&] {
    const bool reached = kernel.run(kernel_goal, deadline_in(limit), kernel_turn);
    kernel_state.store(reached ? kReached : kFailed);
  });
  stack.set_goal(stack_goal);
  rig.set_hook([&](Instant now) {
    if (stack_turn) stack_turn(now);
    stack.pump(now);
  });
  // A little beyond the kernel's own deadline, so that its thread has always ended here.
  rig.pump_until(
      [&] {
        const int state = kernel_state.load();
        return state == kFailed ||
               (state == kReached && (stack.reached() || !stack.error().empty()));
      },
      limit + Duration::milliseconds(500));
  rig.set_hook({});
  kernel_thread.join();
  return kernel_state.load() == kReached && stack.reached();
}

}  // namespace tapstack::md5kernel
