//! `tb-governor keygen`.

use anyhow::Result;
use tb_decisions::Signer;

use crate::cli::KeygenArgs;
use crate::outln;

/// Creates the key file and prints the public key an auditor should trust.
pub fn run(args: &KeygenArgs) -> Result<()> {
    let signer = Signer::generate_key_file(&args.out)?;
    outln!("wrote {} (mode 0600)", args.out.display());
    outln!("public key: {}", signer.public_key_hex());
    outln!("keyid:      {}", signer.keyid());
    outln!(
        "use it with TB_GOVERNOR_SIGN=1 TB_GOVERNOR_KEY_FILE={}; auditors pass --trusted-key {}",
        args.out.display(),
        signer.public_key_hex()
    );
    Ok(())
}
