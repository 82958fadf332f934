//! Card payments: nexo Sale-to-POI messages, Adyen local message protection, the card-number
//! filter and a terminal simulator. Kassa never sees a card number: the terminal reads the card
//! and Kassa keeps references, a masked PAN and a token.

pub mod crypto;
pub mod link;
pub mod nexo;
pub mod pan;
pub mod service;
pub mod sim;
pub mod tls;
