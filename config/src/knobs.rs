//! `knob_table!`: declares a table of integer knobs once (docs, type, default) and derives the
//! struct, its serde shape, its `Default` and a `knobs()` listing from that single declaration,
//! so a default can never disagree between the struct, the docs and the validation pass.

/// Declares a `#[serde(deny_unknown_fields, default)]` struct of integer knobs with defaults.
///
/// Every field type must convert losslessly into `i128` (`u32`, `u64`, `i64`).
macro_rules! knob_table {
    (
        $(#[$smeta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                pub $field:ident : $ty:ty = $default:expr
            ),* $(,)?
        }
    ) => {
        $(#[$smeta])*
        #[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                pub $field: $ty,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    $( $field: $default, )*
                }
            }
        }

        impl $name {
            /// Every knob of this table as `(key, value)`, in declaration order; used for the
            /// safe-integer check and for naming the knobs that differ between two configs.
            pub fn knobs(&self) -> Vec<(&'static str, i128)> {
                vec![ $( (stringify!($field), i128::from(self.$field)), )* ]
            }
        }
    };
}

pub(crate) use knob_table;
