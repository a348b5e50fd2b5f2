CREATE TABLE `x509pop_nonces` (
	`nonce` text PRIMARY KEY NOT NULL,
	`expires_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `x509pop_nonces_expires_at_idx` ON `x509pop_nonces` (`expires_at`);