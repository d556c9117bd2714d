//! Gas of `FerryVault.release` for federations of 4, 16 and 64 members (T = 3, 11, 43), the same
//! one-item batch each time, next to a plain ETH `deposit` on the same node. Goal: constant in the
//! member count — the vault stores only the federation's aggregate key, so a release costs one
//! hash-to-curve and one two-pair pairing check whatever the federation's size.

use ferry_devnet::anvil::{Anvil, ReleaseGas};
use ferry_parent_chains::ethereum::U256;
use ferry_types::Address;

/// (members, signatures needed) of the federations measured: T just above two thirds.
const FEDERATIONS: [(u64, usize); 3] = [(4, 3), (16, 11), (64, 43)];

/// Measures and prints the gas of a release per federation size and its ratio to the 4-member
/// figure, with a deposit's gas as a reference.
///
/// # Errors
/// Anvil cannot start, a transaction fails, or the execution gas differs between sizes.
pub async fn run() -> anyhow::Result<()> {
    let anvil = Anvil::start().await?;
    let deposit = anvil.deposit_eth(&Address::from_bytes([0x42; 20]), U256::from(1_000_000_000u64)).await?;
    let mut measured: Vec<ReleaseGas> = Vec::new();
    for (members, threshold) in FEDERATIONS {
        measured.push(anvil.measure_release_gas(members, threshold, members).await?);
    }
    let Some(baseline) = measured.first().copied() else {
        return Ok(());
    };
    println!("FerryVault.release gas, one ETH item (the same batch for every federation):");
    println!("  deposit (ETH)                          gas {:>7}  (reference)", deposit.gas_used);
    for gas in &measured {
        println!(
            "  {:>2} members, T = {:>2}  gas {:>7}  execution {:>7}  calldata {:>5}  ratio {:.3}  (goal 1.000)",
            gas.members,
            gas.threshold,
            gas.gas_used,
            gas.execution_gas,
            gas.calldata_gas,
            gas.gas_used as f64 / baseline.gas_used as f64
        );
    }
    anyhow::ensure!(
        measured.iter().all(|gas| gas.execution_gas == baseline.execution_gas),
        "release execution gas differs between federation sizes: {measured:?}"
    );
    Ok(())
}
