//! The example app's app-owned writeback handler: the axum starter template
//! (`templates/axum/main.rs`, what `synapsor-runner handler template axum` prints), built as is,
//! so that the image the example deploys runs exactly the code users start from.
//!
//! It is an example, not a product: its "database" is the template's in-memory stand-in, seeded
//! from `SYNAPSOR_HANDLER_DEMO_DATA`. Beside the handler it mints its users' agent tokens
//! ([`agent_tokens`]).

// The template is an app's own code: it reads its own clock, not the runner's.
#[allow(clippy::disallowed_methods)]
#[path = "../../../../templates/axum/main.rs"]
mod template;

mod agent_tokens;

fn main() {
    agent_tokens::spawn();
    template::main();
}
