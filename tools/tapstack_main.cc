// tapstack: runs the userspace TCP/IP stack over a TAP device.
//
// Exit codes (every command): 0 success, 1 runtime failure, 2 usage error. Help goes to
// stdout; an error is one line on stderr that begins "tapstack: ".
#include <span>
#include <string_view>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "tools/bgp_command.h"
#include "tools/build_info.h"
#include "tools/cli.h"
#include "tools/connect.h"
#include "tools/report.h"
#include "tools/serve.h"
#include "tools/session.h"

namespace tapstack::cli {
namespace {

struct CommandSpec {
  std::string_view name;
  std::string_view summary;
  void (*print_help)();
  int (*run)(std::span<const std::string_view> args);
};

int usage_error(std::string_view message, std::string_view help_command) {
  fmt::print(stderr, "{}: {} (see '{}')\n", kProgram, message, help_command);
  return kExitUsage;
}

void print_up_help() {
  fmt::print(
      "usage: tapstack up --tap NAME --addr A.B.C.D/LEN|X:X::X/LEN [options]\n"
      "\n"
      "Runs the stack on a TAP interface until SIGINT, SIGTERM or SIGHUP, answering ARP and\n"
      "ICMP echo (ping) for an IPv4 --addr, neighbour discovery and ICMPv6 echo (ping -6)\n"
      "for an IPv6 one; give both for a dual stack.\n"
      "\n"
      "options:\n"
      "{}"
      "\n"
      "example (as root, in a network namespace of its own; sh has no job control, so the\n"
      "process is stopped by its PID):\n"
      "  unshare -n sh -c 'ip link set lo up\n"
      "    tapstack up --tap tap0 --addr 198.18.0.2/24 --host-addr 198.18.0.1/24 & pid=$!\n"
      "    sleep 1; ping -c 3 198.18.0.2; kill $pid; wait $pid'\n"
      "the same with both families:\n"
      "  unshare -n sh -c 'ip link set lo up\n"
      "    tapstack up --tap tap0 --addr 198.18.0.2/24 --addr 2001:db8::2/64 \\\n"
      "        --host-addr 198.18.0.1/24 --host-addr 2001:db8::1/64 & pid=$!\n"
      "    sleep 2; ping -c 3 198.18.0.2; ping -6 -c 3 2001:db8::2; kill $pid; wait $pid'\n",
      kCommonOptionsHelp);
}

int run_up(std::span<const std::string_view> args) {
  const auto parsed = parse_up(args);
  if (std::holds_alternative<HelpRequested>(parsed)) {
    print_up_help();
    return kExitSuccess;
  }
  if (const auto* error = std::get_if<UsageError>(&parsed)) {
    return usage_error(error->message, "tapstack up --help");
  }
  const UpOptions& options = std::get<UpOptions>(parsed);

  auto session = Session::open(options.common);
  if (!session) return runtime_failure(session.error().message);
  // Status lines on stderr, as every command prints them: stdout is for data.
  report("{}; stop with Ctrl-C", (*session)->describe());

  const Status run = (*session)->run_until_signal();
  report("{}", (*session)->summary());
  const Status finished = (*session)->finish();
  if (!run) return runtime_failure(run.error().message);
  if (!finished) return runtime_failure(finished.error().message);
  return kExitSuccess;
}

void print_serve_help() {
  fmt::print(
      "usage: tapstack serve --tap NAME --addr A.B.C.D/LEN|X:X::X/LEN --port P [options]\n"
      "\n"
      "Runs the stack on a TAP interface with a TCP server on port P, for any number of\n"
      "connections at once, of both families when both --addr are given. What each\n"
      "connection sends is, by --mode:\n"
      "  print    written to stdout (or --output FILE); the data of concurrent connections\n"
      "           is interleaved in chunks\n"
      "  echo     sent back to it\n"
      "  discard  read and counted\n"
      "When a peer closes its side, the server closes its own once all is sent. Each\n"
      "connection opened and closed is one line on stderr, with the peer and byte counts;\n"
      "stdout carries only the data.\n"
      "Runs until SIGINT, SIGTERM or SIGHUP (exit 0). With --once it exits after the first\n"
      "connection has closed: 0 if it closed cleanly, 1 if it was reset or timed out.\n"
      "\n"
      "options:\n"
      "  --port P               the port to listen on, 1 to 65535 (required)\n"
      "  --mode MODE            print (the default), echo or discard\n"
      "  --once                 exit after the first connection has closed\n"
      "  --output FILE          print mode: write the data to FILE ('-': stdout)\n"
      "{}"
      "{}"
      "\n"
      "example (as root, in a network namespace of its own):\n"
      "  unshare -n bash -c 'ip link set lo up\n"
      "    tapstack serve --tap tap0 --addr 198.18.0.2/24 --host-addr 198.18.0.1/24 \\\n"
      "        --port 5000 --once & sleep 1\n"
      "    echo hello > /dev/tcp/198.18.0.2/5000; wait'\n"
      "example with TCP-MD5, the kernel's client signing with the key \"12345\" as the seed's\n"
      "does (kernel-peer is bazel-bin/tools/kernel-peer):\n"
      "  unshare -n sh -c 'ip link set lo up\n"
      "    tapstack serve --tap tap0 --addr 198.18.0.2/24 --host-addr 198.18.0.1/24 \\\n"
      "        --port 6666 --md5 198.18.0.1=12345 --once & sleep 1\n"
      "    echo hello | kernel-peer client --to 198.18.0.2:6666 --md5 198.18.0.2=12345; wait'\n",
      kMd5OptionHelp, kCommonOptionsHelp);
}

int run_serve_command(std::span<const std::string_view> args) {
  const auto parsed = parse_serve(args);
  if (std::holds_alternative<HelpRequested>(parsed)) {
    print_serve_help();
    return kExitSuccess;
  }
  if (const auto* error = std::get_if<UsageError>(&parsed)) {
    return usage_error(error->message, "tapstack serve --help");
  }
  return run_serve(std::get<ServeOptions>(parsed));
}

void print_connect_help() {
  fmt::print(
      "usage: tapstack connect --tap NAME --addr A.B.C.D/LEN|X:X::X/LEN --to IP:PORT\n"
      "                        [options]\n"
      "\n"
      "Runs the stack on a TAP interface and opens one TCP connection to IP:PORT, a host on\n"
      "the stack's subnet (or beyond --gateway). Sends the input (stdin, or --input FILE)\n"
      "to it until the input ends, then shuts down the sending side; writes everything the\n"
      "peer sends to stdout (or --output FILE) until the peer closes. Both are streamed:\n"
      "memory stays bounded whatever their size. Nothing is printed on success.\n"
      "Exit status: 0 when both sides closed cleanly; 1, with one line on stderr, when the\n"
      "connection is refused, reset or times out, or the input or output fails.\n"
      "\n"
      "options:\n"
      "  --to IP:PORT           the peer to connect to (required): 198.18.0.1:6666, or an\n"
      "                         IPv6 address in brackets, [2001:db8::1]:6666, of a family\n"
      "                         the stack has an --addr of\n"
      "  --input FILE           send FILE ('-': stdin, the default)\n"
      "  --output FILE          write what the peer sends to FILE ('-': stdout, the default)\n"
      "  --timeout SECONDS      give up when the whole run takes longer (0.5 and the like\n"
      "                         allowed); the handshake alone is always limited to 30 s\n"
      "{}"
      "{}"
      "\n"
      "example (as root, in a network namespace of its own):\n"
      "  unshare -n bash -c 'ip link set lo up\n"
      "    kernel-peer server --port 6666 --reply \"hello from the kernel\" & sleep 1\n"
      "    echo hello | tapstack connect --tap tap0 \\\n"
      "        --addr 198.18.0.2/24 --host-addr 198.18.0.1/24 --to 198.18.0.1:6666; wait'\n"
      "(kernel-peer is bazel-bin/tools/kernel-peer; add --md5 198.18.0.2=12345 to it and\n"
      "--md5 198.18.0.1=12345 to tapstack for a signed connection.)\n",
      kMd5OptionHelp, kCommonOptionsHelp);
}

int run_connect_command(std::span<const std::string_view> args) {
  const auto parsed = parse_connect(args);
  if (std::holds_alternative<HelpRequested>(parsed)) {
    print_connect_help();
    return kExitSuccess;
  }
  if (const auto* error = std::get_if<UsageError>(&parsed)) {
    return usage_error(error->message, "tapstack connect --help");
  }
  return run_connect(std::get<ConnectOptions>(parsed));
}

const CommandSpec kCommands[] = {
    {"up", "run the stack on a TAP interface, answering ARP and ping", print_up_help, run_up},
    {"serve", "run a TCP server on the stack: print, echo or discard what peers send",
     print_serve_help, run_serve_command},
    {"connect", "open a TCP connection from the stack; stream stdin to it, its data to stdout",
     print_connect_help, run_connect_command},
    {"bgp", "run a BGP-4 speaker for one peer on the stack, TCP-MD5 signed if asked",
     print_bgp_help, run_bgp_command},
};

void print_help() {
  fmt::print(
      "usage: tapstack COMMAND [options]\n"
      "       tapstack help [COMMAND] | --help | --version\n"
      "\n"
      "A userspace TCP/IP stack over a Linux TAP device.\n"
      "\n"
      "commands:\n");
  for (const CommandSpec& command : kCommands) {
    fmt::print("  {:<8} {}\n", command.name, command.summary);
  }
  fmt::print(
      "\n"
      "Run 'tapstack COMMAND --help' for a command's options.\n"
      "Exit status: 0 success, 1 runtime failure, 2 usage error.\n");
}

// "unknown command 'serv'; did you mean 'serve'?", and the same for an option before one.
std::string unknown_word(std::string_view name) {
  const bool option = name.starts_with("-");
  std::vector<std::string> known = {"help"};
  if (option) known = {"--help", "--version"};
  for (const CommandSpec& command : kCommands) known.emplace_back(command.name);
  const std::string_view what = option ? "option" : "command";
  const auto meant = closest_name(name, known);
  if (!meant) return fmt::format("unknown {} '{}'", what, name);
  return fmt::format("unknown {} '{}'; did you mean '{}'?", what, name, *meant);
}

const CommandSpec* find_command(std::string_view name) {
  for (const CommandSpec& command : kCommands) {
    if (command.name == name) return &command;
  }
  return nullptr;
}

// `tapstack help [COMMAND]`
int run_help(std::span<const std::string_view> args) {
  if (args.empty()) {
    print_help();
    return kExitSuccess;
  }
  const CommandSpec* command = find_command(args[0]);
  if (!command) return usage_error(unknown_word(args[0]), "tapstack --help");
  if (args.size() > 1) {
    return usage_error(fmt::format("unexpected argument '{}'", args[1]), "tapstack --help");
  }
  command->print_help();
  return kExitSuccess;
}

int run_main(std::span<const std::string_view> args) {
  if (args.empty()) return usage_error("missing command", "tapstack --help");
  const std::string_view first = args[0];
  const auto rest = args.subspan(1);
  if (first == "--help" || first == "-h" || first == "help") return run_help(rest);
  if (first == "--version") {
    if (!rest.empty()) {
      return usage_error(fmt::format("unexpected argument '{}'", rest[0]), "tapstack --help");
    }
    fmt::print("{} {}, {}\n", kProgram, kVersion, describe_build());
    return kExitSuccess;
  }
  if (const CommandSpec* command = find_command(first)) return command->run(rest);
  return usage_error(unknown_word(first), "tapstack --help");
}

}  // namespace
}  // namespace tapstack::cli

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  return tapstack::cli::run_main(args);
}
