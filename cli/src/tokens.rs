//! `kiln token create`.

use clap::Subcommand;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make a new token (needs an admin token). Prints the secret, once.
    Create {
        name: String,
        /// The new token may create tokens too.
        #[arg(long)]
        admin: bool,
    },
}

pub fn run(client: &kiln::Client, command: &TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { name, admin } => {
            let token = client.create_token(name, *admin)?;
            eprintln!("kiln: token '{}' created; it is shown only now", token.name);
            println!("{}", token.token);
        }
    }
    Ok(())
}
