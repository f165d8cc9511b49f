//! Published ports, `-p 8080:80`: a TCP relay in the tool, as docker's
//! `docker-proxy` is. The tool listens on the host's port; each connection
//! it accepts, it opens one to the container's address and port, and copies
//! bytes both ways until either side closes. The other way, an nftables
//! `dnat` rule that rewrites the destination in the kernel, is on the page.

use anyhow::{Context, Result};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::thread::JoinHandle;
use std::time::Duration;
use workshop::error::hinted;

/// `-p [IP:]HOST_PORT:CONTAINER_PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish {
    /// The host address to listen on (docker's default: every address).
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
}

impl std::fmt::Display for Publish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host_ip.is_unspecified() {
            write!(f, "{}:{}", self.host_port, self.container_port)
        } else {
            write!(
                f,
                "{}:{}:{}",
                self.host_ip, self.host_port, self.container_port
            )
        }
    }
}

fn port(text: &str, which: &str) -> Result<u16, String> {
    let n: u32 = text
        .parse()
        .map_err(|_| format!("{which} {text:?} is not a port number (1 to 65535)"))?;
    match n {
        1..=65535 => Ok(n as u16),
        _ => Err(format!("{which} {n} is out of range: a port is 1 to 65535")),
    }
}

/// clap's parser of `-p`: a bad value is a usage error (exit 2).
pub fn parse_publish(spec: &str) -> Result<Publish, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [host, container] => (Ipv4Addr::UNSPECIFIED, *host, *container),
        [ip, host, container] => {
            let ip: Ipv4Addr = ip
                .parse()
                .map_err(|_| format!("{ip:?} is not an IPv4 address"))?;
            (ip, *host, *container)
        }
        _ => {
            return Err(format!(
                "{spec:?} is not [IP:]HOST_PORT:CONTAINER_PORT (e.g. 8080:80)"
            ))
        }
    };
    Ok(Publish {
        host_ip: ip,
        host_port: port(host, "the host port")?,
        container_port: port(container, "the container port")?,
    })
}

/// The duplicates among `-p`s: two that listen on the same host port.
pub fn repeated_host_port(all: &[Publish]) -> Option<u16> {
    all.iter().enumerate().find_map(|(i, p)| {
        all[..i]
            .iter()
            .any(|q| q.host_port == p.host_port)
            .then_some(p.host_port)
    })
}

// ANCHOR: listen
/// Listen on every published host port, before the container starts: a
/// port another program holds fails the run here, with nothing made yet.
pub fn listen(all: &[Publish]) -> Result<Vec<(Publish, TcpListener)>> {
    all.iter()
        .map(|p| {
            let at = SocketAddrV4::new(p.host_ip, p.host_port);
            match TcpListener::bind(at) {
                Ok(listener) => Ok((*p, listener)),
                Err(e) if e.kind() == ErrorKind::AddrInUse => Err(hinted(
                    format!("-p {p}: port {} is taken on the host ({e})", p.host_port),
                    format!("another program listens there (`ss -ltnp 'sport = :{}'`): publish another host port", p.host_port),
                )),
                Err(e) if e.kind() == ErrorKind::AddrNotAvailable => Err(hinted(
                    format!("-p {p}: the host has no address {} ({e})", p.host_ip),
                    "give one of the host's own addresses (`ip -4 addr`), or leave it out for all of them",
                )),
                Err(e) => Err(e).with_context(|| format!("failed to listen on {at}")),
            }
        })
        .collect()
}
// ANCHOR_END: listen

/// The relays of one container: a thread per published port accepting,
/// and two per connection copying. Dropped: the ports are closed.
pub struct Relays {
    running: Vec<(TcpListener, JoinHandle<()>)>,
}

// ANCHOR: relay
/// Relay each listener's connections to `container`, on its port.
pub fn relay(listeners: Vec<(Publish, TcpListener)>, container: Ipv4Addr) -> Result<Relays> {
    let mut running = Vec::new();
    for (publish, listener) in listeners {
        let to = SocketAddrV4::new(container, publish.container_port);
        let accepting = listener.try_clone().context("failed to dup a listener")?;
        let thread = std::thread::spawn(move || loop {
            let client = match accepting.accept() {
                Ok((client, _)) => client,
                // The Relays were dropped (shutdown below): the port closes.
                Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => break,
                // Out of descriptors (EMFILE) or the like: wait, try again.
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            // No thread to be had: that connection is closed, not the port.
            let _ = std::thread::Builder::new().spawn(move || {
                if let Ok(server) = TcpStream::connect_timeout(&to.into(), Duration::from_secs(5)) {
                    pipe_both_ways(client, server);
                } // refused: the client's connection is closed
            });
        });
        running.push((listener, thread));
    }
    Ok(Relays { running })
}

/// Copy bytes from each side to the other; when one side is done sending,
/// tell the other (a half-close), as an HTTP client's request ends.
fn pipe_both_ways(client: TcpStream, server: TcpStream) {
    let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || copy_then_close(client2, server2));
    copy_then_close(server, client);
    let _ = up.join();
}

fn copy_then_close(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}
// ANCHOR_END: relay

impl Drop for Relays {
    fn drop(&mut self) {
        for (listener, thread) in self.running.drain(..) {
            // Wakes the accepting thread: its accept() fails with EINVAL.
            // SAFETY: shutdown on a socket descriptor we own.
            unsafe { nix::libc::shutdown(listener.as_raw_fd(), nix::libc::SHUT_RDWR) };
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_forms() {
        let p = parse_publish("8080:80").unwrap();
        assert_eq!(
            (p.host_ip, p.host_port, p.container_port),
            (Ipv4Addr::UNSPECIFIED, 8080, 80)
        );
        let p = parse_publish("127.0.0.1:8080:80").unwrap();
        assert_eq!(p.host_ip, Ipv4Addr::LOCALHOST);
        assert_eq!(p.to_string(), "127.0.0.1:8080:80");
        assert_eq!(parse_publish("1:65535").unwrap().container_port, 65535);
    }

    #[test]
    fn refuses_bad_ports() {
        for (bad, why) in [
            ("0:80", "out of range"),
            ("8080:0", "out of range"),
            ("65536:80", "out of range"),
            ("8080:99999999999", "not a port"),
            ("8080", "not [IP:]HOST_PORT:CONTAINER_PORT"),
            ("a:b:c:d", "not [IP:]HOST_PORT:CONTAINER_PORT"),
            ("x:80", "not a port"),
            ("-1:80", "not a port"),
            ("300.1.1.1:80:80", "not an IPv4"),
            (":80", "not a port"),
        ] {
            let err = parse_publish(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn finds_a_host_port_published_twice() {
        let all: Vec<_> = ["8080:80", "8081:81", "127.0.0.1:8080:82"]
            .iter()
            .map(|s| parse_publish(s).unwrap())
            .collect();
        assert_eq!(repeated_host_port(&all), Some(8080));
        assert_eq!(repeated_host_port(&all[..2]), None);
    }
}
