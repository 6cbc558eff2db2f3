// Framing over real file descriptors, address parsing, and the transports'
// error paths (vsock cannot be exercised live here: no vsock loopback).
#include "transport/stream.h"

#include <gtest/gtest.h>
#include <pty.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "transport/address.h"

namespace fsout::transport {
namespace {

using protocol::FrameHeader;
using protocol::FrameKind;

std::pair<int, int> socket_pair() {
  int fds[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  return {fds[0], fds[1]};
}

TEST(Address, ParsesEveryTransport) {
  auto unix_address = parse_address("unix:/run/vm1.sock");
  EXPECT_EQ(unix_address.kind, Address::Kind::kUnix);
  EXPECT_EQ(unix_address.path, "/run/vm1.sock");
  auto tcp = parse_address("tcp:127.0.0.1:7000");
  EXPECT_EQ(tcp.kind, Address::Kind::kTcp);
  EXPECT_EQ(tcp.host, "127.0.0.1");
  EXPECT_EQ(tcp.port, 7000);
  auto tcp6 = parse_address("tcp:[::1]:7001");
  EXPECT_EQ(tcp6.host, "::1");
  auto vsock = parse_address("vsock:3:5000");
  EXPECT_EQ(vsock.kind, Address::Kind::kVsock);
  EXPECT_EQ(vsock.cid, 3u);
  EXPECT_EQ(vsock.port, 5000);
  EXPECT_EQ(parse_address("vsock:host:5000").cid, 2u);
  auto serial = parse_address("serial:/dev/virtio-ports/fsout");
  EXPECT_EQ(serial.kind, Address::Kind::kSerial);
  EXPECT_EQ(serial.path, "/dev/virtio-ports/fsout");
}

TEST(Address, RefusesBadAddressesWithOneLine) {
  for (const char* bad : {"", "nothing", "ftp:x", "unix:", "tcp:host", "tcp:host:0",
                          "tcp:host:99999", "tcp::80", "vsock:x:1", "vsock:3:", "serial:"}) {
    try {
      parse_address(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const TransportError& error) {
      std::string message = error.what();
      EXPECT_EQ(message.find('\n'), std::string::npos);
      EXPECT_FALSE(message.empty());
    }
  }
}

TEST(Address, VsockErrorsAreReported) {
  // Either the machine has no vsock at all or no peer listens: both must be
  // a TransportError naming the address, never a crash or a hang.
  try {
    int fd = connect_to(parse_address("vsock:2:49999"));
    close(fd);
    GTEST_SKIP() << "a vsock peer answered on this machine";
  } catch (const TransportError& error) {
    EXPECT_NE(std::string(error.what()).find("vsock:2:49999"), std::string::npos) << error.what();
  }
}

TEST(Address, UnreachableUnixAndTcpAreReported) {
  EXPECT_THROW(connect_to(parse_address("unix:/nonexistent/fsout.sock")), TransportError);
  EXPECT_THROW(connect_to(parse_address("tcp:127.0.0.1:1")), TransportError);
  EXPECT_THROW(connect_to(parse_address("serial:/nonexistent/port")), TransportError);
}

TEST(FrameStream, CarriesFramesWithTails) {
  auto [a, b] = socket_pair();
  FrameStream writer(a, false), reader(b, false);
  std::vector<uint8_t> big(3 << 20);
  for (size_t i = 0; i < big.size(); ++i) big[i] = uint8_t(i * 7);
  reader.set_max_payload(4 << 20);
  std::thread sender([&] {
    const uint8_t body[] = {1, 2, 3};
    EXPECT_TRUE(writer.write_frame({FrameKind::kRequest, 2, 10, 0}, body));
    EXPECT_TRUE(writer.write_frame({FrameKind::kReply, 16, 11, 0}, body, big));
  });
  FrameHeader header;
  std::vector<uint8_t> payload;
  ASSERT_EQ(reader.read_frame(header, payload), FrameStream::ReadStatus::kFrame);
  EXPECT_EQ(header.request_id, 10u);
  EXPECT_EQ(payload, (std::vector<uint8_t>{1, 2, 3}));
  ASSERT_EQ(reader.read_frame(header, payload), FrameStream::ReadStatus::kFrame);
  EXPECT_EQ(header.opcode, 16);
  ASSERT_EQ(payload.size(), 3 + big.size());
  EXPECT_TRUE(std::equal(big.begin(), big.end(), payload.begin() + 3));
  sender.join();
}

TEST(FrameStream, GarbageIsAFaultOnSockets) {
  auto [a, b] = socket_pair();
  FrameStream reader(b, false);
  const char garbage[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(write(a, garbage, sizeof(garbage)), ssize_t(sizeof(garbage)));
  FrameHeader header;
  std::vector<uint8_t> payload;
  EXPECT_EQ(reader.read_frame(header, payload), FrameStream::ReadStatus::kFault);
  EXPECT_FALSE(reader.fault().empty());
  close(a);
}

TEST(FrameStream, OversizedFrameIsAFault) {
  auto [a, b] = socket_pair();
  FrameStream writer(a, false), reader(b, false);
  reader.set_max_payload(1024);
  std::vector<uint8_t> body(2048);
  std::thread sender([&] { writer.write_frame({FrameKind::kRequest, 2, 1, 0}, body); });
  FrameHeader header;
  std::vector<uint8_t> payload;
  EXPECT_EQ(reader.read_frame(header, payload), FrameStream::ReadStatus::kFault);
  reader.shutdown();
  writer.shutdown();
  sender.join();
}

TEST(FrameStream, ResyncSkipsGarbageAndTornFrames) {
  auto [a, b] = socket_pair();
  FrameStream reader(b, true);
  // Garbage, then the first half of a frame whose writer died, then a pause,
  // then a whole new frame: the reader must deliver the new frame.
  uint8_t torn[protocol::kFrameHeaderSize];
  protocol::encode_frame_header({FrameKind::kRequest, 17, 99, 100000}, torn);
  std::vector<uint8_t> first = {'x', 'F', 'S', 'O', 0, 0, 1};
  first.insert(first.end(), torn, torn + sizeof(torn));
  first.resize(first.size() + 5000, 0xAB);
  ASSERT_EQ(write(a, first.data(), first.size()), ssize_t(first.size()));
  std::thread late([fd = a] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    uint8_t fresh[protocol::kFrameHeaderSize + 2];
    protocol::encode_frame_header({FrameKind::kRequest, 1, 1, 2}, fresh);
    fresh[protocol::kFrameHeaderSize] = 7;
    fresh[protocol::kFrameHeaderSize + 1] = 8;
    EXPECT_EQ(write(fd, fresh, sizeof(fresh)), ssize_t(sizeof(fresh)));
  });
  FrameHeader header;
  std::vector<uint8_t> payload;
  ASSERT_EQ(reader.read_frame(header, payload), FrameStream::ReadStatus::kFrame);
  EXPECT_EQ(header.opcode, 1);
  EXPECT_EQ(header.request_id, 1u);
  EXPECT_EQ(payload, (std::vector<uint8_t>{7, 8}));
  late.join();
  close(a);
}

TEST(FrameStream, ShutdownWakesABlockedReader) {
  auto [a, b] = socket_pair();
  FrameStream reader(b, false);
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    reader.shutdown();
  });
  FrameHeader header;
  std::vector<uint8_t> payload;
  EXPECT_EQ(reader.read_frame(header, payload), FrameStream::ReadStatus::kClosed);
  stopper.join();
  close(a);
}

TEST(Serial, PtyIsOpenedRawAndCarriesFrames) {
  int master = -1, slave = -1;
  char name[256];
  ASSERT_EQ(openpty(&master, &slave, name, nullptr, nullptr), 0);
  int serial_fd = open_serial(name);
  FrameStream guest(serial_fd, true);
  // Bytes a cooked tty would mangle: CR, LF, ^C, ^D, 0xFF.
  const uint8_t body[] = {'\r', '\n', 3, 4, 0xFF, 0, 0x11, 0x13};
  std::thread sender([&] { EXPECT_TRUE(guest.write_frame({FrameKind::kRequest, 2, 5, 0}, body)); });
  FrameStream host(master, true);
  FrameHeader header;
  std::vector<uint8_t> payload;
  ASSERT_EQ(host.read_frame(header, payload), FrameStream::ReadStatus::kFrame);
  EXPECT_EQ(payload, std::vector<uint8_t>(std::begin(body), std::end(body)));
  sender.join();
  close(slave);
}

}  // namespace
}  // namespace fsout::transport
