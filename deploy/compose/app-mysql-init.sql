-- The demo MariaDB resource's table (docker-compose.yml, service app-mysql). The image's entrypoint runs this in
-- MARIADB_DATABASE (app) after creating the user app_user, to whom it grants everything on app.
CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer VARCHAR(64) NOT NULL, total DECIMAL(10,2) NOT NULL, created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
INSERT INTO orders (customer, total) SELECT CONCAT('customer-', seq), (seq * 7 % 500) + 0.99 FROM seq_1_to_100;
