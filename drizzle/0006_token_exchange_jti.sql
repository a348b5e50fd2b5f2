CREATE TABLE `token_exchange_jtis` (
	`key` text PRIMARY KEY NOT NULL,
	`expires_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `token_exchange_jtis_expires_at_idx` ON `token_exchange_jtis` (`expires_at`);