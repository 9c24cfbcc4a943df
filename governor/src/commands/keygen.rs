//! `tb-governor keygen`.

use anyhow::Result;
use tb_decisions::Signer;

use crate::cli::KeygenArgs;

/// Creates the key file and prints the public key an auditor should trust.
pub fn run(args: &KeygenArgs) -> Result<()> {
    let signer = Signer::generate_key_file(&args.out)?;
    println!("wrote {} (mode 0600)", args.out.display());
    println!("public key: {}", signer.public_key_hex());
    println!("keyid:      {}", signer.keyid());
    println!(
        "use it with TB_GOVERNOR_SIGN=1 TB_GOVERNOR_KEY_FILE={}; auditors pass --trusted-key {}",
        args.out.display(),
        signer.public_key_hex()
    );
    Ok(())
}
