#include "stack/tcp/options.h"

#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "md5opt/option.h"
#include "stack/bytes.h"

namespace tapstack {
namespace {

namespace space = tcp_option_space;

}  // namespace

std::optional<size_t> TcpOptionPlan::write(uint8_t* out) const {
  uint8_t* p = out;
  std::optional<size_t> digest_at;
  if (md5) {
    digest_at = md5opt::write_md5_option({p, md5opt::kMd5OptionSpace}, 0);
    p += md5opt::kMd5OptionSpace;
  }
  if (mss) {
    p[0] = tcp_option::kMss;
    p[1] = space::kMss;
    store_be16(p + 2, *mss);
    p += space::kMss;
  }
  if (timestamps) {
    if (sack_permitted) {
      p[0] = tcp_option::kSackPermitted;
      p[1] = 2;
    } else {
      p[0] = p[1] = tcp_option::kNop;
    }
    p[2] = tcp_option::kTimestamps;
    p[3] = 10;
    store_be32(p + 4, timestamps->value);
    store_be32(p + 8, timestamps->echo);
    p += space::kTimestamps;
  } else if (sack_permitted) {
    p[0] = p[1] = tcp_option::kNop;
    p[2] = tcp_option::kSackPermitted;
    p[3] = 2;
    p += space::kSackPermitted;
  }
  if (window_scale) {
    p[0] = tcp_option::kNop;
    p[1] = tcp_option::kWindowScale;
    p[2] = 3;
    p[3] = *window_scale;
    p += space::kWindowScale;
  }
  if (sack_count > 0) {
    p[0] = p[1] = tcp_option::kNop;
    p[2] = tcp_option::kSack;
    p[3] = static_cast<uint8_t>(2 + space::kSackBlock * sack_count);
    p += space::kSackHeader;
    for (size_t i = 0; i < sack_count; ++i) {
      store_be32(p, sack[i].left.value());
      store_be32(p + 4, sack[i].right.value());
      p += space::kSackBlock;
    }
  }
  return digest_at;
}

std::string TcpOptionPlan::describe() const {
  std::vector<std::string> names;
  if (mss) names.push_back(fmt::format("mss {}", *mss));
  if (sack_permitted) names.emplace_back("sack-ok");
  if (timestamps) names.emplace_back("timestamps");
  if (window_scale) names.push_back(fmt::format("wscale {}", *window_scale));
  if (sack_count > 0) {
    names.push_back(fmt::format("sack {} block{}", sack_count, sack_count > 1 ? "s" : ""));
  }
  return fmt::format("{}", fmt::join(names, ", "));
}

}  // namespace tapstack
