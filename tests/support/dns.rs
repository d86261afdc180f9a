//! A minimal DNS client for the tests of the test cluster's DNS: one A query over UDP.

use std::io::{Error, Result};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

/// Response codes of RFC 1035 that the tests look for.
pub const DNS_NOERROR: u8 = 0;
pub const DNS_REFUSED: u8 = 5;

/// The answer to an A query: its response code and the addresses of its answer section.
#[derive(Debug)]
pub struct DnsAnswer {
    pub rcode: u8,
    pub addresses: Vec<Ipv4Addr>,
}

/// Asks `server` for the A records of `name` (one datagram, answered within 3 s).
pub fn dns_query_a(server: SocketAddr, name: &str) -> Result<DnsAnswer> {
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    socket.set_read_timeout(Some(Duration::from_secs(3)))?;
    let id = (std::process::id() as u16).to_be_bytes();
    // Header: id, flags (recursion desired), one question, no other records.
    let mut query = vec![id[0], id[1], 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.trim_end_matches('.').split('.') {
        query.push(u8::try_from(label.len()).map_err(Error::other)?);
        query.extend(label.as_bytes());
    }
    query.extend([0, 0, 1, 0, 1]); // end of name, type A, class IN
    socket.send_to(&query, server)?;
    let mut buf = [0u8; 1500];
    let (len, _) = socket.recv_from(&mut buf)?;
    parse_answer(&buf[..len], id)
}

fn parse_answer(msg: &[u8], id: [u8; 2]) -> Result<DnsAnswer> {
    let bad = || Error::other(format!("malformed DNS response: {msg:?}"));
    let byte = |i: usize| msg.get(i).copied().ok_or_else(bad);
    let word = |i: usize| Ok::<_, Error>(u16::from_be_bytes([byte(i)?, byte(i + 1)?]) as usize);
    if msg.get(..2) != Some(&id[..]) {
        return Err(bad());
    }
    let rcode = byte(3)? & 0x0f;
    let (questions, answers) = (word(4)?, word(6)?);
    // A name is labels ending in a zero byte, or ending in a two-byte pointer.
    let skip_name = |mut i: usize| loop {
        match byte(i)? {
            0 => return Ok::<_, Error>(i + 1),
            b if b & 0xc0 == 0xc0 => return Ok(i + 2),
            b => i += 1 + b as usize,
        }
    };
    let mut i = 12;
    for _ in 0..questions {
        i = skip_name(i)? + 4; // type, class
    }
    let mut addresses = Vec::new();
    for _ in 0..answers {
        i = skip_name(i)?;
        let (kind, rdlength) = (word(i)?, word(i + 8)?);
        let data = i + 10;
        if kind == 1 && rdlength == 4 {
            addresses.push(Ipv4Addr::new(byte(data)?, byte(data + 1)?, byte(data + 2)?, byte(data + 3)?));
        }
        i = data + rdlength;
    }
    Ok(DnsAnswer { rcode, addresses })
}
