-- book_html.lua - pandoc filter for the book as HTML (the book-html target).
--
-- Pages are written for GitHub, so links point at .md files and diagrams are
-- ```mermaid blocks. In the HTML book:
--  * a link to another page (foo.md, foo.md#part) points at foo.html, and
--    one to SUMMARY.md at index.html;
--  * a link out of book/ (../chapters/...) points at the file in the source
--    tree (metadata evq-source-root), since the HTML lives in the build tree;
--  * a mermaid block becomes <pre class="mermaid"> with its source text, and
--    a page that has one loads mermaid.min.js from its own folder (book-html
--    copies mermaid's browser bundle there from the npm package that the
--    book-tools target installs), draws every diagram, and then marks <html>
--    with data-mermaid="done" (or "error", or "missing" when the bundle is
--    not there) - the browser test (book.browser) waits for that mark;
--  * the page title is its first level-1 heading;
--  * every page gets the contents and its previous and next pages, in the
--    order of SUMMARY.md (metadata evq-summary: its path; evq-page: this
--    page's file name), at the top and at the bottom.

local source_root = nil
local is_index = false
local summary_path = nil
local page_name = nil
local has_mermaid = false

local function html_escape(s)
  return (s:gsub('&', '&amp;'):gsub('<', '&lt;'):gsub('>', '&gt;'))
end

local function rewrite_target(target)
  if target:match('^%a[%w+.-]*:') or target:sub(1, 1) == '#' then
    return target -- a URL with a scheme, or a place on this page
  end
  local path, fragment = target:match('^([^#]*)(#?.*)$')
  if path == 'SUMMARY.md' then
    return 'index.html' .. fragment -- the contents are the index
  end
  if path:match('^[^/]+%.md$') then
    return path:gsub('%.md$', '.html') .. fragment
  end
  if source_root and path:sub(1, 3) == '../' then
    return 'file://' .. source_root .. '/' .. path:sub(4) .. fragment
  end
  return target
end

-- The pages in the order of SUMMARY.md: { {file = 'x.md', title = '...'}, ... }.
local function summary_pages()
  local pages = {}
  if not summary_path then
    return pages
  end
  local file = io.open(summary_path, 'r')
  if not file then
    return pages
  end
  for line in file:lines() do
    local title, target = line:match('%[([^%]]+)%]%(([^%)#]+%.md)[^%)]*%)')
    if title then
      table.insert(pages, { file = target, title = title })
    end
  end
  file:close()
  return pages
end

local function nav_link(page, rel, text)
  return string.format('<a rel="%s" href="%s">%s</a>', rel, rewrite_target(page.file),
                       html_escape(text))
end

-- "<- previous | Contents | next ->"; the contents (index) page has only a next.
local function navigation()
  local pages = summary_pages()
  local here = nil
  for i, page in ipairs(pages) do
    if page.file == page_name then
      here = i
    end
  end
  local parts = {}
  if is_index then
    if pages[1] then
      table.insert(parts, nav_link(pages[1], 'next', pages[1].title .. ' \u{2192}'))
    end
  else
    local previous = here and pages[here - 1]
    if here == 1 then
      table.insert(parts, '<a rel="prev" href="index.html">\u{2190} Contents</a>')
    elseif previous then
      table.insert(parts, nav_link(previous, 'prev', '\u{2190} ' .. previous.title))
    end
    table.insert(parts, '<a href="index.html">Contents</a>')
    local following = here and pages[here + 1]
    if following then
      table.insert(parts, nav_link(following, 'next', following.title .. ' \u{2192}'))
    end
  end
  return '<nav class="book-nav">' .. table.concat(parts, ' <span>\u{00b7}</span> ') .. '</nav>'
end

-- Loads mermaid's browser bundle from the page's folder (no network), draws
-- every <pre class="mermaid">, and says how it went on <html data-mermaid>.
local mermaid_loader = [[
<script src="mermaid.min.js"></script>
<script>
(function () {
  var root = document.documentElement;
  if (!window.mermaid) {
    root.dataset.mermaid = 'missing';
    return;
  }
  mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' });
  mermaid.run({ querySelector: 'pre.mermaid' }).then(function () {
    root.dataset.mermaid = 'done';
  }, function (error) {
    root.dataset.mermaid = 'error';
    console.error('mermaid: ' + (error && error.message ? error.message : error));
  });
})();
</script>
]]

return {
  {
    Meta = function(meta)
      if meta['evq-source-root'] then
        source_root = pandoc.utils.stringify(meta['evq-source-root'])
      end
      is_index = meta['evq-index'] ~= nil
      if meta['evq-summary'] then
        summary_path = pandoc.utils.stringify(meta['evq-summary'])
      end
      if meta['evq-page'] then
        page_name = pandoc.utils.stringify(meta['evq-page'])
      end
    end,
  },
  {
    Link = function(link)
      link.target = rewrite_target(link.target)
      return link
    end,
    Image = function(image)
      image.src = rewrite_target(image.src)
      return image
    end,
    CodeBlock = function(block)
      if block.classes:includes('mermaid') then
        has_mermaid = true
        return pandoc.RawBlock('html', '<pre class="mermaid">' .. html_escape(block.text) .. '</pre>')
      end
    end,
  },
  {
    Pandoc = function(doc)
      if not doc.meta.title and not doc.meta.pagetitle then
        for _, block in ipairs(doc.blocks) do
          if block.t == 'Header' and block.level == 1 then
            doc.meta.pagetitle = pandoc.utils.stringify(block.content)
            break
          end
        end
      end
      local nav = navigation()
      table.insert(doc.blocks, 1, pandoc.RawBlock('html', nav))
      table.insert(doc.blocks, pandoc.RawBlock('html', nav))
      if has_mermaid then
        table.insert(doc.blocks, pandoc.RawBlock('html', mermaid_loader))
      end
      return doc
    end,
  },
}
