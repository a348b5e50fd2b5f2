-- Subject tokens already exchanged (POST /exchange/v1/token, TOKEN_EXCHANGE issuers with "replay":"refuse"):
-- the issuer alias and the token's jti, kept until the token expires. Written as drizzle-kit writes
-- src/worker/db/schema.ts's table. See docs/token-exchange.md.
CREATE TABLE `token_exchange_jtis` (
	`key` text PRIMARY KEY NOT NULL,
	`expires_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `token_exchange_jtis_expires_at_idx` ON `token_exchange_jtis` (`expires_at`);
