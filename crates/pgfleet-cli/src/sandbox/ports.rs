//! The sandbox's port map: server name → port, kept in `DIR/ports` so reruns use the same ports.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Server name → port, kept in `DIR/ports` ("name port" lines) so reruns use the same ports (the
/// replicas' primary_conninfo names the primary's).
pub(super) struct PortMap {
    path: PathBuf,
    ports: BTreeMap<String, u16>,
}

impl PortMap {
    /// The file name inside the sandbox directory.
    pub(super) const FILE: &'static str = "ports";

    pub(super) fn load(dir: &Path) -> anyhow::Result<PortMap> {
        let path = dir.join(Self::FILE);
        let mut ports = BTreeMap::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for (n, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    let parsed = line
                        .split_once(' ')
                        .and_then(|(name, port)| Some((name, port.trim().parse::<u16>().ok()?)));
                    let Some((name, port)) = parsed else {
                        anyhow::bail!(
                            "{} line {}: expected `name port`, got `{line}`",
                            path.display(),
                            n + 1
                        );
                    };
                    ports.insert(name.to_string(), port);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
        Ok(PortMap { path, ports })
    }

    /// The saved port of `name`, or the first free port after `proxy_port` that no other server
    /// has (saved at once).
    pub(super) fn get_or_pick(&mut self, name: &str, proxy_port: u16) -> anyhow::Result<u16> {
        if let Some(port) = self.ports.get(name) {
            return Ok(*port);
        }
        let taken: Vec<u16> = self.ports.values().copied().collect();
        let port = (proxy_port.saturating_add(1)..=u16::MAX)
            .find(|p| !taken.contains(p) && TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .with_context(|| format!("no free port after {proxy_port} for {name}"))?;
        self.ports.insert(name.to_string(), port);
        let mut text = String::from("# server ports of this sandbox (name port)\n");
        for (n, p) in &self.ports {
            let _ = writeln!(text, "{n} {p}");
        }
        std::fs::write(&self.path, text)
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(port)
    }
}
