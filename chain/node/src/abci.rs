//! The tower-abci glue: four services (consensus, mempool, info, snapshot) over one [`Node`].
//! Work runs on blocking threads so signature checks and fsyncs never stall the async runtime.
//! A [`Fatal`] error logs and ends the process: a node that cannot trust its state must not vote.

use std::sync::Arc;

use futures::future::BoxFuture;
use tendermint::v0_38::abci::{
    ConsensusRequest, ConsensusResponse, InfoRequest, InfoResponse, MempoolRequest, MempoolResponse, SnapshotRequest,
    SnapshotResponse, response,
};
use tower::service_fn;
use tower_abci::BoxError;

use crate::node::{Fatal, Node};

fn fatal(error: Fatal) -> ! {
    tracing::error!(%error, "fatal: stopping the node");
    eprintln!("ferry-chain: fatal: {error}");
    std::process::exit(2)
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, Fatal> + Send + 'static) -> Result<T, BoxError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => fatal(error),
        Err(join_error) => Err(Box::new(join_error)),
    }
}

fn consensus(node: Arc<Node>, request: ConsensusRequest) -> Result<ConsensusResponse, Fatal> {
    Ok(match request {
        ConsensusRequest::InitChain(init) => ConsensusResponse::InitChain(node.init_chain(init)?),
        ConsensusRequest::PrepareProposal(prepare) => {
            ConsensusResponse::PrepareProposal(node.prepare_proposal(prepare))
        }
        // Every transaction is re-validated in FinalizeBlock, so any proposal is acceptable.
        ConsensusRequest::ProcessProposal(_) => ConsensusResponse::ProcessProposal(response::ProcessProposal::Accept),
        ConsensusRequest::ExtendVote(_) => {
            ConsensusResponse::ExtendVote(response::ExtendVote { vote_extension: Default::default() })
        }
        ConsensusRequest::VerifyVoteExtension(_) => {
            ConsensusResponse::VerifyVoteExtension(response::VerifyVoteExtension::Accept)
        }
        ConsensusRequest::FinalizeBlock(block) => ConsensusResponse::FinalizeBlock(node.finalize_block(block)?),
        ConsensusRequest::Commit => ConsensusResponse::Commit(node.commit()?),
    })
}

/// Where the ABCI server listens: CometBFT's `proxy_app`.
///
/// A Unix socket is the one to use when CometBFT runs on the same host. Over TCP every request
/// CometBFT follows with a `Flush` (each query, each block) waits for a delayed ACK: tower-abci
/// writes the response and the flush answer as two small segments on a socket without
/// `TCP_NODELAY` (it binds the listener itself, so the option cannot be set from here), and
/// Nagle's algorithm holds the second until the first is acknowledged — about 40 ms on Linux.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AbciAddress {
    /// `unix:///path/to/socket`.
    Unix(std::path::PathBuf),
    /// `tcp://host:port` or `host:port`.
    Tcp(std::net::SocketAddr),
}

impl std::str::FromStr for AbciAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(path) = text.strip_prefix("unix://") {
            if path.is_empty() {
                return Err("`unix://` needs a socket path, e.g. unix:///var/run/ferry/abci.sock".to_owned());
            }
            return Ok(AbciAddress::Unix(path.into()));
        }
        let address = text.strip_prefix("tcp://").unwrap_or(text);
        address
            .parse()
            .map(AbciAddress::Tcp)
            .map_err(|error| format!("`{text}` is neither unix://<path> nor [tcp://]<ip>:<port>: {error}"))
    }
}

impl std::fmt::Display for AbciAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AbciAddress::Unix(path) => write!(f, "unix://{}", path.display()),
            AbciAddress::Tcp(address) => write!(f, "tcp://{address}"),
        }
    }
}

/// Runs the ABCI server on `address` until the process ends.
///
/// # Errors
/// When the listener cannot be bound or the server fails.
pub async fn serve(node: Arc<Node>, address: &AbciAddress) -> Result<(), BoxError> {
    let consensus_node = node.clone();
    let consensus_service =
        service_fn(move |request: ConsensusRequest| -> BoxFuture<'static, Result<ConsensusResponse, BoxError>> {
            let node = consensus_node.clone();
            Box::pin(blocking(move || consensus(node, request)))
        });
    let mempool_node = node.clone();
    // CheckTx runs inside `call`, not in the returned future: the buffer calls the service in
    // arrival order, so transactions from one account are checked in the order CometBFT sent
    // them (their sequences build on each other in the mempool overlay).
    let mempool_service = service_fn(move |request: MempoolRequest| {
        let response = match request {
            MempoolRequest::CheckTx(check) => mempool_node.check_tx(check).map(MempoolResponse::CheckTx),
        };
        std::future::ready(Ok::<_, BoxError>(response.unwrap_or_else(|error| fatal(error))))
    });
    let info_node = node.clone();
    let info_service = service_fn(move |request: InfoRequest| -> BoxFuture<'static, Result<InfoResponse, BoxError>> {
        let node = info_node.clone();
        Box::pin(blocking(move || match request {
            InfoRequest::Info(_) => node.info().map(InfoResponse::Info),
            InfoRequest::Query(query) => node.query(query).map(InfoResponse::Query),
            InfoRequest::Echo(echo) => Ok(InfoResponse::Echo(response::Echo { message: echo.message })),
        }))
    });
    let snapshot_node = node;
    let snapshot_service =
        service_fn(move |request: SnapshotRequest| -> BoxFuture<'static, Result<SnapshotResponse, BoxError>> {
            let node = snapshot_node.clone();
            Box::pin(blocking(move || {
                Ok(match request {
                    SnapshotRequest::ListSnapshots => SnapshotResponse::ListSnapshots(node.list_snapshots()),
                    SnapshotRequest::LoadSnapshotChunk(load) => {
                        SnapshotResponse::LoadSnapshotChunk(node.load_snapshot_chunk(load))
                    }
                    SnapshotRequest::OfferSnapshot(offer) => {
                        SnapshotResponse::OfferSnapshot(node.offer_snapshot(offer)?)
                    }
                    SnapshotRequest::ApplySnapshotChunk(chunk) => {
                        SnapshotResponse::ApplySnapshotChunk(node.apply_snapshot_chunk(chunk)?)
                    }
                })
            }))
        });
    let server = tower_abci::v038::Server::builder()
        .consensus(tower::buffer::Buffer::new(consensus_service, 1))
        .mempool(tower::buffer::Buffer::new(mempool_service, 64))
        .info(tower::buffer::Buffer::new(info_service, 64))
        .snapshot(tower::buffer::Buffer::new(snapshot_service, 4))
        .finish()
        .ok_or("ABCI server is missing a service")?;
    match address {
        AbciAddress::Tcp(address) => server.listen_tcp(address).await,
        AbciAddress::Unix(path) => {
            // A socket file left by a previous run would make the bind fail.
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(format!("removing the old socket {}: {error}", path.display()).into()),
            }
            server.listen_unix(path).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AbciAddress;

    #[test]
    fn addresses_parse_as_unix_sockets_or_tcp() {
        assert_eq!("unix:///run/ferry/abci.sock".parse(), Ok(AbciAddress::Unix("/run/ferry/abci.sock".into())));
        assert_eq!("tcp://127.0.0.1:26658".parse(), Ok(AbciAddress::Tcp(([127, 0, 0, 1], 26658).into())));
        assert_eq!("127.0.0.1:26658".parse(), Ok(AbciAddress::Tcp(([127, 0, 0, 1], 26658).into())));
        for bad in ["unix://", "localhost", "tcp://nowhere"] {
            let error = bad.parse::<AbciAddress>().err().unwrap_or_default();
            assert!(error.contains("unix://"), "{bad}: {error}");
        }
    }
}
