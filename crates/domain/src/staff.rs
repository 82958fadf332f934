//! Staff roles, the permissions that need a supervisor, and the PIN lockout rule. The table of
//! who may do what is data: a chain can publish its own; [`PermissionTable::default`] is the
//! table Kassa ships.

use std::collections::BTreeMap;
use std::fmt;

/// What a member of staff is, in increasing order of authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Sells, takes payments, opens and closes own shift.
    Cashier,
    /// Approves what a cashier may not do alone.
    Supervisor,
    /// Runs the store: everything a supervisor does, plus store-level corrections.
    Manager,
    /// Configures the system.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 4] = [Role::Cashier, Role::Supervisor, Role::Manager, Role::Admin];

    /// The role's name on the wire and in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Cashier => "cashier",
            Role::Supervisor => "supervisor",
            Role::Manager => "manager",
            Role::Admin => "admin",
        }
    }

    /// Reads a role name.
    pub fn parse(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == value)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An action that some roles may take alone and others only with an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// A line or cart discount above [`PermissionTable::free_discount_percent`].
    LargeDiscount,
    /// Selling at a price other than the pricebook's.
    PriceOverride,
    /// A return without the original receipt.
    ReturnWithoutReceipt,
    /// Voiding the last sale.
    Void,
    /// Opening the cash drawer without a sale.
    NoSale,
    /// Taking cash out of the drawer.
    PaidOut,
    /// Putting cash into the drawer.
    PaidIn,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 7] = [
        Permission::LargeDiscount,
        Permission::PriceOverride,
        Permission::ReturnWithoutReceipt,
        Permission::Void,
        Permission::NoSale,
        Permission::PaidOut,
        Permission::PaidIn,
    ];

    /// The permission's name on the wire and in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::LargeDiscount => "large-discount",
            Permission::PriceOverride => "price-override",
            Permission::ReturnWithoutReceipt => "return-without-receipt",
            Permission::Void => "void",
            Permission::NoSale => "no-sale",
            Permission::PaidOut => "paid-out",
            Permission::PaidIn => "paid-in",
        }
    }

    /// Reads a permission name.
    pub fn parse(value: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == value)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The lowest role that may take each action alone; anyone below needs an approval by someone
/// at or above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionTable {
    minimum: BTreeMap<Permission, Role>,
    /// A discount up to this percentage of the discounted amount needs nobody's approval.
    pub free_discount_percent: u32,
}

impl Default for PermissionTable {
    /// Kassa's shipped table: a cashier needs a supervisor for every listed action except a
    /// paid-in; a discount over 10 % is a large one.
    fn default() -> Self {
        let minimum = Permission::ALL
            .into_iter()
            .map(|p| {
                let role = match p {
                    Permission::PaidIn => Role::Cashier,
                    _ => Role::Supervisor,
                };
                (p, role)
            })
            .collect();
        PermissionTable {
            minimum,
            free_discount_percent: 10,
        }
    }
}

impl PermissionTable {
    /// Sets the lowest role that may take `permission` alone.
    pub fn set(&mut self, permission: Permission, role: Role) {
        self.minimum.insert(permission, role);
    }

    /// The lowest role that may take `permission` alone.
    pub fn minimum(&self, permission: Permission) -> Role {
        self.minimum
            .get(&permission)
            .copied()
            .unwrap_or(Role::Supervisor)
    }

    /// Whether `role` may take `permission` without an approval.
    pub fn allows(&self, role: Role, permission: Permission) -> bool {
        role >= self.minimum(permission)
    }

    /// The permissions `role` holds alone, in table order.
    pub fn granted(&self, role: Role) -> Vec<Permission> {
        Permission::ALL
            .into_iter()
            .filter(|p| self.allows(role, *p))
            .collect()
    }

    /// Whether a discount of `discount` off `amount` (both in minor units) is a large one: more
    /// than the free percentage by more than the rounding to a minor unit (10 % off 9.99 is
    /// 1.00, and still 10 %).
    pub fn is_large_discount(&self, discount: i64, amount: i64) -> bool {
        if discount <= 0 {
            return false;
        }
        if amount <= 0 {
            return true;
        }
        // discount - 1/2 > amount × p / 100, in integers.
        i128::from(discount) * 100
            > i128::from(amount) * i128::from(self.free_discount_percent) + 50
    }
}

/// How many wrong PINs in a row lock a member of staff out of a till.
pub const MAX_PIN_FAILURES: u32 = 5;
/// How long a lockout lasts, in milliseconds.
pub const LOCKOUT_MS: i64 = 5 * 60 * 1000;

/// Wrong PINs entered in a row by one member of staff at one till.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PinAttempts {
    /// Failures since the last success or lockout.
    pub failures: u32,
    /// Until when (epoch milliseconds) the member is locked out, if at all.
    pub locked_until: Option<i64>,
}

/// What a PIN attempt comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinOutcome {
    /// The PIN was right.
    Accepted,
    /// The PIN was wrong; this many tries are left before a lockout.
    Rejected {
        /// Tries left.
        attempts_left: u32,
    },
    /// This attempt was the last wrong one: locked until the given instant.
    LockedNow {
        /// Epoch milliseconds.
        until: i64,
    },
    /// Locked before this attempt; the PIN was not even checked.
    Locked {
        /// Epoch milliseconds.
        until: i64,
    },
}

impl PinAttempts {
    /// Whether the member is locked out at `now` (epoch milliseconds).
    pub fn locked_at(&self, now: i64) -> Option<i64> {
        self.locked_until.filter(|until| *until > now)
    }

    /// Records one attempt made at `now` whose PIN was `correct`, and says what it came to.
    /// A locked member's attempt is refused without looking at the PIN.
    pub fn attempt(&mut self, now: i64, correct: bool) -> PinOutcome {
        if let Some(until) = self.locked_at(now) {
            return PinOutcome::Locked { until };
        }
        if correct {
            *self = PinAttempts::default();
            return PinOutcome::Accepted;
        }
        self.failures += 1;
        if self.failures >= MAX_PIN_FAILURES {
            let until = now + LOCKOUT_MS;
            *self = PinAttempts {
                failures: 0,
                locked_until: Some(until),
            };
            PinOutcome::LockedNow { until }
        } else {
            PinOutcome::Rejected {
                attempts_left: MAX_PIN_FAILURES - self.failures,
            }
        }
    }
}

/// Checks that a PIN is 4 to 8 digits.
pub fn check_pin(pin: &str) -> Result<(), &'static str> {
    if (4..=8).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err("a PIN is 4 to 8 digits")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_table_asks_a_supervisor_for_what_a_cashier_may_not_do() {
        let table = PermissionTable::default();
        assert!(!table.allows(Role::Cashier, Permission::Void));
        assert!(!table.allows(Role::Cashier, Permission::PaidOut));
        assert!(table.allows(Role::Cashier, Permission::PaidIn));
        assert!(table.allows(Role::Supervisor, Permission::Void));
        assert!(table.allows(Role::Admin, Permission::ReturnWithoutReceipt));
        assert_eq!(table.granted(Role::Cashier), vec![Permission::PaidIn]);
    }

    #[test]
    fn a_discount_is_large_only_above_the_free_percentage() {
        let table = PermissionTable::default();
        assert!(!table.is_large_discount(100, 1000));
        assert!(table.is_large_discount(101, 1000));
        // 10 % of 9.99 rounds to 1.00.
        assert!(!table.is_large_discount(100, 999));
        assert!(table.is_large_discount(101, 999));
        assert!(!table.is_large_discount(0, 0));
        assert!(table.is_large_discount(1, 0));
    }

    #[test]
    fn five_wrong_pins_lock_for_five_minutes_and_a_right_one_resets() {
        let mut a = PinAttempts::default();
        for left in [4, 3, 2, 1] {
            assert_eq!(
                a.attempt(1_000, false),
                PinOutcome::Rejected {
                    attempts_left: left
                }
            );
        }
        assert_eq!(
            a.attempt(2_000, false),
            PinOutcome::LockedNow {
                until: 2_000 + LOCKOUT_MS
            }
        );
        // Even the right PIN is refused while locked.
        assert_eq!(
            a.attempt(3_000, true),
            PinOutcome::Locked {
                until: 2_000 + LOCKOUT_MS
            }
        );
        assert_eq!(a.attempt(2_000 + LOCKOUT_MS, true), PinOutcome::Accepted);
        assert_eq!(a, PinAttempts::default());
        a.attempt(1, false);
        a.attempt(2, true);
        assert_eq!(a.failures, 0);
    }

    #[test]
    fn names_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
        }
        assert_eq!(check_pin("1234"), Ok(()));
        assert!(check_pin("12a4").is_err());
        assert!(check_pin("123").is_err());
    }
}
