// Counters and drop reasons. One list of drop reasons is at once what the counters count,
// what the trace prints and what tests assert: adding a check means adding one line here.
//
// Counter names are Linux's nstat names where Linux has one (IpInHdrErrors, IpExtInCsumErrors,
// IcmpInEchos, ...), so a user can put them beside `nstat -az` of the kernel peer. Counters
// Linux does not keep (Ethernet and ARP details, reassembly duplicates, TcpInNoSocket,
// TcpInOutOfWindow, TcpInBadFlags) use the same style. docs/counters.md describes every counter
// and drop reason, and tests/docs:counters_doc_test fails when one is added without it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace tapstack {

#define TAPSTACK_COUNTERS(X)                                                                  \
  /* Ethernet (no nstat equivalent) */                                                        \
  X(EthInFrames) X(EthOutFrames) X(EthInErrors) X(EthInOtherHost) X(EthInMulticastNotJoined)  \
  X(EthInUnknownTypes)                                                                        \
  /* ARP (no nstat equivalent; Linux keeps some in /proc/net/stat/arp_cache) */               \
  X(ArpInRequests) X(ArpInReplies) X(ArpInErrors) X(ArpInOther) X(ArpOutRequests)             \
  X(ArpOutReplies) X(ArpResolveFailures) X(ArpUnresolvedDiscards) X(ArpCacheEvictions)        \
  /* IPv4, nstat "Ip" and "IpExt" */                                                          \
  X(IpInReceives) X(IpInHdrErrors) X(IpInAddrErrors) X(IpInUnknownProtos) X(IpInDiscards)     \
  X(IpInDelivers) X(IpOutRequests) X(IpOutDiscards) X(IpOutNoRoutes) X(IpReasmTimeout)        \
  X(IpReasmReqds) X(IpReasmOKs) X(IpReasmFails) X(IpFragOKs) X(IpFragFails) X(IpFragCreates) \
  X(IpExtInTruncatedPkts) X(IpExtInCsumErrors) X(IpExtReasmOverlaps) X(IpReasmDuplicates)     \
  /* ICMP, nstat "Icmp" */                                                                    \
  X(IcmpInMsgs) X(IcmpInErrors) X(IcmpInCsumErrors) X(IcmpInDestUnreachs) X(IcmpInEchos)      \
  X(IcmpInEchoReps) X(IcmpOutMsgs) X(IcmpOutDestUnreachs) X(IcmpOutTimeExcds)                 \
  X(IcmpOutEchos) X(IcmpOutEchoReps) X(IcmpOutRateLimitGlobal)                                \
  /* IPv6, nstat "Ip6" */                                                                     \
  X(Ip6InReceives) X(Ip6InHdrErrors) X(Ip6InAddrErrors) X(Ip6InUnknownProtos)                \
  X(Ip6InTruncatedPkts) X(Ip6InDiscards) X(Ip6InDelivers) X(Ip6InMcastPkts)                  \
  X(Ip6OutRequests) X(Ip6OutDiscards) X(Ip6OutNoRoutes) X(Ip6OutMcastPkts)                   \
  X(Ip6ReasmTimeout) X(Ip6ReasmReqds) X(Ip6ReasmOKs) X(Ip6ReasmFails) X(Ip6ReasmDuplicates)  \
  X(Ip6FragOKs) X(Ip6FragFails) X(Ip6FragCreates)                                            \
  /* ICMPv6, nstat "Icmp6" */                                                                 \
  X(Icmp6InMsgs) X(Icmp6InErrors) X(Icmp6InCsumErrors) X(Icmp6InDestUnreachs)                \
  X(Icmp6InPktTooBigs) X(Icmp6InTimeExcds) X(Icmp6InParmProblems) X(Icmp6InEchos)            \
  X(Icmp6InEchoReplies) X(Icmp6InRouterSolicits) X(Icmp6InRouterAdvertisements)              \
  X(Icmp6InNeighborSolicits) X(Icmp6InNeighborAdvertisements) X(Icmp6InRedirects)            \
  X(Icmp6OutMsgs) X(Icmp6OutErrors) X(Icmp6OutDestUnreachs) X(Icmp6OutTimeExcds)             \
  X(Icmp6OutParmProblems) X(Icmp6OutEchos) X(Icmp6OutEchoReplies)                            \
  X(Icmp6OutNeighborSolicits) X(Icmp6OutNeighborAdvertisements) X(Icmp6OutRateLimitHost)     \
  /* Neighbour discovery (no nstat equivalent; Linux keeps some in /proc/net/stat/ndisc_cache) */ \
  X(NdiscResolveFailures) X(NdiscUnresolvedDiscards) X(NdiscCacheEvictions) X(NdiscDadFailures) \
  /* TCP, nstat "Tcp" and "TcpExt" */                                                        \
  X(TcpActiveOpens) X(TcpPassiveOpens) X(TcpAttemptFails) X(TcpEstabResets) X(TcpInSegs)      \
  X(TcpOutSegs) X(TcpRetransSegs) X(TcpInErrs) X(TcpInCsumErrors) X(TcpOutRsts)              \
  X(TcpExtTCPTimeouts) X(TcpExtTCPSynRetrans) X(TcpExtListenOverflows) X(TcpExtListenDrops)  \
  X(TcpExtTCPAbortOnData) X(TcpExtTCPAbortOnClose) X(TcpExtTCPAbortOnTimeout)                \
  X(TcpExtDelayedACKs) X(TcpExtTCPFastRetrans) X(TcpExtTCPSackRecovery) X(TcpExtTCPRenoRecovery)\
  X(TcpExtTCPOFOQueue) X(TcpExtTCPOFODrop) X(TcpExtTCPRcvQDrop) X(TcpExtTCPZeroWindowDrop)   \
  X(TcpExtTW) X(TcpExtTCPChallengeACK) X(TcpExtTCPWinProbe) X(TcpExtTCPKeepAlive)            \
  X(TcpExtTCPPureAcks) X(TcpExtTWRecycled) X(TcpExtPAWSEstab)                                 \
  X(TcpExtTCPDSACKOldSent) X(TcpExtTCPDSACKRecv)                                              \
  X(TcpExtSyncookiesSent) X(TcpExtSyncookiesRecv) X(TcpExtSyncookiesFailed)                   \
  X(TcpExtTCPReqQFullDoCookies) X(TcpExtTCPReqQFullDrop)                                      \
  /* ours: Linux drops these without a counter (drop reasons NO_SOCKET, TCP_FLAGS, ...) */  \
  X(TcpInNoSocket) X(TcpInOutOfWindow) X(TcpInBadFlags)                                       \
  /* RFC 2385, as Linux counts it */                                                          \
  X(TcpExtTCPMD5NotFound) X(TcpExtTCPMD5Unexpected) X(TcpExtTCPMD5Failure)                    \
  /* Transmit path (no nstat equivalent) */                                                   \
  X(TxQueueDrops)

enum class Counter : uint16_t {
#define TAPSTACK_COUNTER_ENUM(name) name,
  TAPSTACK_COUNTERS(TAPSTACK_COUNTER_ENUM)
#undef TAPSTACK_COUNTER_ENUM
      kCount
};

// X(reason, counter, second counter or None, what the trace prints)
#define TAPSTACK_DROP_REASONS(X)                                                              \
  X(EthTooShort, EthInErrors, None, "ethernet: frame shorter than its 14-byte header")        \
  X(EthNotForUs, EthInOtherHost, None, "ethernet: unicast to another host's MAC")          \
  X(EthMulticastNotJoined, EthInMulticastNotJoined, None,                                     \
    "ethernet: multicast to a group we did not join")                          \
  X(EthUnknownType, EthInUnknownTypes, None, "ethernet: ethertype not handled")               \
  X(ArpMalformed, ArpInErrors, None, "arp: truncated, or not Ethernet/IPv4")                  \
  X(ArpBadSender, ArpInErrors, None, "arp: sender is broadcast, multicast or our own address") \
  X(ArpNotForUs, ArpInOther, None, "arp: target address is not ours")                         \
  X(ArpQueueFull, ArpUnresolvedDiscards, None, "arp: queue for resolution full, oldest dropped")  \
  X(ArpResolveFailed, ArpUnresolvedDiscards, None, "arp: no reply after all retries")         \
  X(IpTruncated, IpInHdrErrors, None, "ipv4: shorter than its header")                        \
  X(IpBadVersion, IpInHdrErrors, None, "ipv4: version is not 4")                              \
  X(IpBadHeaderLength, IpInHdrErrors, None, "ipv4: header length below 20 or above total")    \
  X(IpTotalLengthBeyondFrame, IpExtInTruncatedPkts, None, "ipv4: total length beyond frame")  \
  X(IpBadChecksum, IpInHdrErrors, IpExtInCsumErrors, "ipv4: header checksum wrong")          \
  X(IpTtlZero, IpInHdrErrors, None, "ipv4: TTL is 0")                                         \
  X(IpBadSource, IpInAddrErrors, None, "ipv4: source is broadcast or multicast")              \
  X(IpNotForUs, IpInAddrErrors, None, "ipv4: destination is not our address")                 \
  X(IpUnknownProtocol, IpInUnknownProtos, None, "ipv4: no handler for this protocol")         \
  X(IpFragBadLength, IpReasmFails, None, "ipv4: fragment payload not a multiple of 8")        \
  X(IpFragTooBig, IpReasmFails, None, "ipv4: fragments reach beyond 65535 bytes")             \
  X(IpFragOverlap, IpReasmFails, IpExtReasmOverlaps, "ipv4: fragments overlap (RFC 5722)")    \
  X(IpFragDuplicate, IpReasmDuplicates, None, "ipv4: fragment already received")              \
  X(IpFragTimeout, IpReasmTimeout, IpReasmFails, "ipv4: reassembly did not complete in time") \
  X(IpFragMemoryLimit, IpReasmFails, None, "ipv4: reassembly memory full, oldest dropped")     \
  X(IpOutNoRoute, IpOutNoRoutes, None, "ipv4 out: destination not on link, no gateway")       \
  X(IpOutTooLong, IpOutDiscards, None, "ipv4 out: datagram longer than 65535 bytes")          \
  X(IcmpTruncated, IcmpInErrors, None, "icmp: shorter than its 8-byte header")                \
  X(IcmpBadChecksum, IcmpInErrors, IcmpInCsumErrors, "icmp: checksum wrong")                  \
  X(IcmpRateLimited, IcmpOutRateLimitGlobal, None, "icmp out: error rate limit reached")      \
  X(Ip6Truncated, Ip6InHdrErrors, None, "ipv6: shorter than its 40-byte header")              \
  X(Ip6BadVersion, Ip6InHdrErrors, None, "ipv6: version is not 6")                             \
  X(Ip6PayloadBeyondFrame, Ip6InTruncatedPkts, None, "ipv6: payload length beyond frame")      \
  X(Ip6Jumbogram, Ip6InHdrErrors, None, "ipv6: payload length 0 (jumbogram): not supported")   \
  X(Ip6BadSource, Ip6InAddrErrors, None, "ipv6: source is multicast")                          \
  X(Ip6NotForUs, Ip6InAddrErrors, None, "ipv6: destination is not ours nor a group we joined") \
  X(Ip6Tentative, Ip6InAddrErrors, None, "ipv6: destination is ours but DAD has not passed")   \
  X(Ip6ExtTooMany, Ip6InHdrErrors, None, "ipv6: more extension headers than the walk allows")  \
  X(Ip6ExtTruncated, Ip6InHdrErrors, None, "ipv6: extension header runs past the payload")     \
  X(Ip6HopByHopNotFirst, Ip6InHdrErrors, None,                                                \
    "ipv6: hop-by-hop header not right after the fixed header")                                \
  X(Ip6BadOption, Ip6InHdrErrors, None, "ipv6: option runs past its header")                  \
  X(Ip6UnknownOption, Ip6InHdrErrors, None, "ipv6: unknown option whose type says discard")    \
  X(Ip6RoutingType0, Ip6InHdrErrors, None, "ipv6: routing header type 0 (RFC 5095)")           \
  X(Ip6RoutingUnknown, Ip6InHdrErrors, None,                                                  \
    "ipv6: routing header of an unknown type with segments left")                             \
  X(Ip6UnknownProtocol, Ip6InUnknownProtos, None, "ipv6: no handler for this next header")    \
  X(Ip6NoNextHeader, Ip6InDiscards, None, "ipv6: no next header (59): nothing to deliver")     \
  X(Ip6FragBadLength, Ip6InHdrErrors, Ip6ReasmFails,                                          \
    "ipv6: fragment payload not a multiple of 8")                                             \
  X(Ip6FragTooBig, Ip6InHdrErrors, Ip6ReasmFails, "ipv6: fragments reach beyond 65535 bytes") \
  X(Ip6FragNoUpperHeader, Ip6InHdrErrors, Ip6ReasmFails,                                      \
    "ipv6: first fragment without the upper-layer header (RFC 7112)")                         \
  X(Ip6FragOverlap, Ip6ReasmFails, None, "ipv6: fragments overlap (RFC 5722)")                 \
  X(Ip6FragNested, Ip6ReasmFails, None, "ipv6: a Fragment header inside a reassembled packet")  \
  X(Ip6FragDuplicate, Ip6ReasmDuplicates, None, "ipv6: fragment already received")             \
  X(Ip6FragTimeout, Ip6ReasmTimeout, Ip6ReasmFails, "ipv6: reassembly did not complete in time") \
  X(Ip6FragMemoryLimit, Ip6ReasmFails, None, "ipv6: reassembly memory full, oldest dropped")   \
  X(Ip6OutNoRoute, Ip6OutNoRoutes, None, "ipv6 out: destination not on link, no gateway")      \
  X(Ip6OutNoSource, Ip6OutNoRoutes, None, "ipv6 out: no address of ours to send from yet")     \
  X(Ip6OutTooLong, Ip6OutDiscards, None, "ipv6 out: payload longer than 65535 bytes")          \
  X(Icmp6Truncated, Icmp6InErrors, None, "icmpv6: shorter than its 4-byte header")             \
  X(Icmp6BadChecksum, Icmp6InErrors, Icmp6InCsumErrors, "icmpv6: checksum wrong")              \
  X(Icmp6Malformed, Icmp6InErrors, None, "icmpv6: message too short or bad for its type")      \
  X(Icmp6RateLimited, Icmp6OutRateLimitHost, None, "icmpv6 out: error rate limit reached")     \
  X(NdiscBadMessage, Icmp6InErrors, None,                                                     \
    "ndisc: hop limit not 255, code not 0, bad length or option (RFC 4861 §7.1)")             \
  X(NdiscNotForUs, Icmp6InErrors, None, "ndisc: target is not an address of ours")             \
  X(NdiscQueueFull, NdiscUnresolvedDiscards, None,                                            \
    "ndisc: queue for resolution full, oldest dropped")                                       \
  X(NdiscResolveFailed, NdiscUnresolvedDiscards, None, "ndisc: no advertisement after all solicitations") \
  X(NdiscCacheFull, NdiscUnresolvedDiscards, None,                                           \
    "ndisc: neighbour cache full of entries being resolved, packet dropped")                  \
  X(TcpTruncated, TcpInErrs, None, "tcp: shorter than its 20-byte header")                    \
  X(TcpBadHeaderLength, TcpInErrs, None, "tcp: data offset below 5 or beyond the segment")    \
  X(TcpBadChecksum, TcpInErrs, TcpInCsumErrors, "tcp: checksum wrong")                       \
  X(TcpBroadcast, TcpInErrs, None, "tcp: to or from a broadcast or multicast address")        \
  X(TcpNoSocket, TcpInNoSocket, None, "tcp: no connection or listener (reset sent)")          \
  X(TcpResetNoSocket, TcpInNoSocket, None, "tcp: reset for no connection, ignored")          \
  X(TcpListenOverflow, TcpExtListenOverflows, TcpExtListenDrops, "tcp: listen queue full")   \
  X(TcpListenNotSyn, TcpExtListenDrops, None, "tcp: listener got neither SYN nor ACK")       \
  X(TcpBadFlags, TcpInBadFlags, None, "tcp: flags that make no sense (SYN with RST or FIN)")  \
  X(TcpOutOfWindow, TcpInOutOfWindow, None, "tcp: sequence outside the receive window")     \
  X(TcpAckNotAcceptable, TcpInOutOfWindow, None, "tcp: acknowledges nothing we sent")        \
  X(TcpRstOutOfWindow, TcpInOutOfWindow, None, "tcp: reset outside the window, ignored")    \
  X(TcpOfoQueueFull, TcpExtTCPOFODrop, None, "tcp: out-of-order queue full")                 \
  X(TcpPawsRejected, TcpExtPAWSEstab, None, "tcp: timestamp older than the last (PAWS)")     \
  X(TcpReceiveQueueFull, TcpExtTCPRcvQDrop, None, "tcp: data beyond the receive buffer")     \
  X(TcpZeroWindow, TcpExtTCPZeroWindowDrop, None, "tcp: data while our window is zero")     \
  X(TcpNoAck, TcpInErrs, None, "tcp: synchronized state but no ACK flag")                    \
  X(TcpDataAfterClose, TcpExtTCPAbortOnData, None, "tcp: data after our side closed (reset)") \
  X(Md5NotFound, TcpExtTCPMD5NotFound, None,                                                  \
    "md5: key for the peer expected, no option found (tcp_v4_inbound_md5_hash)")               \
  X(Md5Unexpected, TcpExtTCPMD5Unexpected, None,                                              \
    "md5: option found, no key for the peer (tcp_v4_inbound_md5_hash)")                        \
  X(Md5Failure, TcpExtTCPMD5Failure, None,                                                    \
    "md5: digest wrong for the key (tcp_v4_inbound_md5_hash)")                                 \
  X(TcpNoSocketSigned, TcpInNoSocket, None,                                                   \
    "tcp: signed, for no connection, and no listener's key verifies it: no reset")            \
  X(TxQueueFull, TxQueueDrops, None, "transmit: queue full, frame dropped")

enum class DropReason : uint16_t {
#define TAPSTACK_DROP_ENUM(name, counter, counter2, text) name,
  TAPSTACK_DROP_REASONS(TAPSTACK_DROP_ENUM)
#undef TAPSTACK_DROP_ENUM
      kCount
};

constexpr size_t kCounterCount = static_cast<size_t>(Counter::kCount);
constexpr size_t kDropReasonCount = static_cast<size_t>(DropReason::kCount);

std::string_view counter_name(Counter counter);
std::string_view drop_reason_name(DropReason reason);
std::string_view drop_reason_text(DropReason reason);
// The counter(s) a drop moves: "TcpInErrs, TcpInCsumErrors".
std::string drop_reason_counters(DropReason reason);

class Counters {
 public:
  void add(Counter counter, uint64_t n = 1) { values_[static_cast<size_t>(counter)] += n; }
  uint64_t get(Counter counter) const { return values_[static_cast<size_t>(counter)]; }
  uint64_t operator[](Counter counter) const { return get(counter); }

  uint64_t drops(DropReason reason) const { return drops_[static_cast<size_t>(reason)]; }

  // {"IpInReceives": 5, ..., "drops": {"IpBadChecksum": 1, ...}}; every counter is listed,
  // drop reasons only when non-zero.
  std::string to_json() const;

 private:
  // Counts the drop under its reason and under the reason's nstat counter(s). Only the one
  // drop path calls it, so that no drop escapes the trace.
  friend struct LayerContext;
  void count_drop(DropReason reason);

  std::array<uint64_t, kCounterCount> values_{};
  std::array<uint64_t, kDropReasonCount> drops_{};
};

}  // namespace tapstack
