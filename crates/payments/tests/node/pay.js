// Sends one payment to a terminal with Adyen's official Node library (TerminalLocalAPI, which
// encrypts with NexoCrypto) and prints the decrypted response as JSON on standard output.
//
// Environment: TERMINAL_URL (https://127.0.0.1:PORT), TERMINAL_CA (PEM path), POI_ID,
// KEY_ID, KEY_VERSION, PASSPHRASE, AMOUNT (major units, e.g. "12.34"), CURRENCY.
"use strict";

const { Client, TerminalLocalAPI } = require("@adyen/api-library");

async function main() {
  const env = (name) => {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set`);
    return v;
  };
  const client = new Client({
    apiKey: "not-used-by-local-terminals",
    environment: "TEST",
    certificatePath: env("TERMINAL_CA"),
    terminalApiLocalEndpoint: "https://127.0.0.1",
  });
  const api = new TerminalLocalAPI(client);
  // The library fixes port 8443; the simulator under test listens on a free port instead.
  api.localRequest.endpoint = `${env("TERMINAL_URL")}/nexo/`;

  const serviceId = String(Date.now() % 1e10);
  const request = {
    SaleToPOIRequest: {
      MessageHeader: {
        MessageCategory: "Payment",
        MessageClass: "Service",
        MessageType: "Request",
        POIID: env("POI_ID"),
        ProtocolVersion: "3.0",
        SaleID: "node-till",
        ServiceID: serviceId,
      },
      PaymentRequest: {
        PaymentTransaction: {
          AmountsReq: { Currency: env("CURRENCY"), RequestedAmount: Number(env("AMOUNT")) },
        },
        SaleData: {
          SaleTransactionID: { TimeStamp: new Date().toISOString(), TransactionID: "node-sale-1" },
        },
      },
    },
  };
  const securityKey = {
    AdyenCryptoVersion: 1,
    KeyIdentifier: env("KEY_ID"),
    KeyVersion: Number(env("KEY_VERSION")),
    Passphrase: env("PASSPHRASE"),
  };
  const response = await api.request(request, securityKey);
  process.stdout.write(JSON.stringify({ serviceId, response }) + "\n");
}

main().catch((e) => {
  process.stderr.write(`interop failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
