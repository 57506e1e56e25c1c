//! The admin console (placeholder, being written).

use std::sync::Arc;

use pgfleet_proxy::console::{Console, ConsoleError, ConsoleFuture};
use pgfleet_proxy::Runtime;

/// The admin console commands.
pub struct AdminConsole;

impl Console for AdminConsole {
    fn execute<'a>(&'a self, _rt: &'a Arc<Runtime>, command: &'a str) -> ConsoleFuture<'a> {
        let command = command.to_owned();
        Box::pin(async move {
            Err(ConsoleError {
                code: "42601",
                message: format!("pgfleet: unknown admin command `{command}`"),
            })
        })
    }
}
