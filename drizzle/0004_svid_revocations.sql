CREATE TABLE `revocation_revision` (
	`id` integer PRIMARY KEY NOT NULL,
	`revision` integer NOT NULL,
	CONSTRAINT "revocation_revision_single_row" CHECK("revocation_revision"."id" = 1)
);
--> statement-breakpoint
CREATE TABLE `svid_revocations` (
	`serial` text NOT NULL,
	`spiffe_id` text NOT NULL,
	`expires_at` integer NOT NULL,
	`revoked_at` integer NOT NULL,
	`reason` text DEFAULT '' NOT NULL,
	PRIMARY KEY(`serial`, `spiffe_id`)
);
--> statement-breakpoint
CREATE INDEX `svid_revocations_spiffe_id_idx` ON `svid_revocations` (`spiffe_id`);--> statement-breakpoint
CREATE INDEX `svid_revocations_expires_at_idx` ON `svid_revocations` (`expires_at`);